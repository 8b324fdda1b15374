"""Reading article files of every format into documents: plain text, Markdown, HTML, PDF, Word."""
