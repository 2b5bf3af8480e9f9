FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """A cell a spreadsheet will show as text, never run as a formula (OWASP's CSV injection advice):
    text starting with = + - @ tab or carriage return gets a leading apostrophe. Numbers pass as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def spreadsheet_text(value):
    """The cell as it was before spreadsheet_safe() (an import of a file this portal exported): the
    apostrophe it put before a formula character is dropped; every other value passes as it is."""
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(FORMULA_STARTS):
        return value[1:]
    return value
