FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """A cell a spreadsheet will show as text, never run as a formula (OWASP's CSV injection advice):
    text starting with = + - @ tab or carriage return gets a leading apostrophe. Numbers pass as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
