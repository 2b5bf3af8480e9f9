import io

import pytest

from loyalty.legacy import ColumnMapping, legacy_import

HEADER = (
    "member_no,first_name,last_name,company,email,phone,street,postal_code,city,region,language,member_type,"
    "store,enrolled_on,balance,tier,tier_since,points_expire_on,marketing_consent"
)


def csv_text(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


@pytest.fixture
def legacy(program):
    """legacy(text or bytes, **options) -> ImportReport: the import service on an in-memory file."""

    def _import(content, *, encoding="utf-8", mapping=None, into=None, **options):
        data = content.encode(encoding) if isinstance(content, str) else content
        mapping = ColumnMapping.from_json(mapping) if isinstance(mapping, dict) else mapping
        return legacy_import(program=into or program, stream=io.BytesIO(data), mapping=mapping, **options)

    return _import
