# sys/ tests.
