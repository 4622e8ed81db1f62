"""PII de-identification: Presidio recognizers and operators that work offline."""
