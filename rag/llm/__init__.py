"""Answers written by a language model, with the prompt and the claim check that hold them to the passages."""
