"""The two intent-confidence thresholds of the seed rules, in one place.

Below `REPHRASE_BELOW` the tutor (and the web client) asks the student to rephrase; below
`HUMAN_REVIEW_BELOW` the query joins the human labelling queue. The intent model's
manifest may carry calibrated values (`shared.models.intent`); these are the defaults.
A module of its own so the learning loop can read them without loading a model.
"""

REPHRASE_BELOW = 0.40
HUMAN_REVIEW_BELOW = 0.60
