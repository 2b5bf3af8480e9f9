import segno
from django.utils.safestring import SafeString, mark_safe


def qr_svg(text: str, *, scale: int = 4, title: str = "") -> SafeString:
    """An inline SVG QR code (no image file, no external service); `title` is its accessible name."""
    # omitsize: a viewBox instead of a fixed size, so the code scales with its box (the page sets the size).
    svg = segno.make(text, error="m").svg_inline(scale=scale, title=title or text, dark="#111827", omitsize=True)
    return mark_safe(svg)
