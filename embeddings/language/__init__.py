"""Language analysis shared by the index and the questions: words, stems, names, dates, word lists."""
