"""Prediction: P(correct) and expected seconds before a task, and recording its outcome.

features.py  the 11 history features (SQL for serving, incremental for training)
attempts.py  record a prediction, complete an attempt (shared with grading)
retrain.py   completed tasks count toward retraining (durable retrain requests)
irt.py       the IRT-style statistical fallback (numpy), defaults.py the no-data answer
service.py   which model answers, and the response
"""
