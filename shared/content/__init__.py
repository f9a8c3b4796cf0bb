"""Personalized content: explanations and quizzes for a topic, adapted to the student."""
