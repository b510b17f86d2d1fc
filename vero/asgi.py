"""ASGI entry point: HTTP through Django, WebSockets through Channels (served by Daphne)."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vero.settings")
django.setup(set_prefix=False)  # as django.core.asgi.get_asgi_application does

from vero.body_limits import daphne_install  # noqa: E402
from vero.handler import VeroASGIHandler  # noqa: E402

daphne_install()  # uploads refused before their body is read (vero.body_limits)

django_asgi_app = VeroASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from vero.lifecycle import StartWorkersOnFirstCall  # noqa: E402
from vero.routing import websocket_urlpatterns  # noqa: E402

application = StartWorkersOnFirstCall(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": AllowedHostsOriginValidator(
                AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
            ),
        }
    )
)
