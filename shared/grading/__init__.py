"""Grading: MCQ from the stored question, short answers by one of four graders behind
one contract (LLM, grader model, embedding similarity, lexical overlap), and recording
the graded attempt with its mastery update.

Import the submodules you need (`shared.grading.service` for the whole flow); this
package imports nothing itself, so the training venv can use `score_mapping` alone.
"""
