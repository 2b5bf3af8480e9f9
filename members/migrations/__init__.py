# The trades most programs start with; staff rename, reorder or add their own in the admin.
# (Migration 0005 and members.apps create them in a database that has none.)
DEFAULT_MEMBER_TYPES = [
    ("consumer", "Consumer"),
    ("contractor", "Contractor"),
    ("roofer", "Roofer"),
    ("installer", "Installer"),
    ("retailer", "Retailer"),
]
