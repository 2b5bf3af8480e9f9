from django.http import HttpRequest

from members.selectors import user_area


def navigation(request: HttpRequest) -> dict:
    """Which navigation the layout shows: program staff, store clerk, member or visitor."""
    user = getattr(request, "user", None)
    return {"nav_area": user_area(user=user) if user is not None else "anonymous"}
