import pytest

import obcore


@pytest.fixture(params=obcore.kinds())
def kind(request):
    """Every compiled book variant, so each test runs against all of them."""
    return request.param
