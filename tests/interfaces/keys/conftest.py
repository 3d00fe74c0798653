"""The REST door's key fixtures serve the keys room's tests too."""

from tests.interfaces.http.conftest import auth_on, keys  # noqa: F401  (fixtures)
