"""The web chat: the Gradio app, its HTML, its front door, its answer slots and its logins."""
