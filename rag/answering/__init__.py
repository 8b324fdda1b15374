"""From a question and retrieved passages to an answer: question analysis, sentence scoring, abstention."""
