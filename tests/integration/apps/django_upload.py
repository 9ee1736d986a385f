"""Django reading a whole upload with request.body: one file, its own settings.
DATA_UPLOAD_MAX_MEMORY_SIZE is None so that Django itself does not refuse big bodies."""
import hashlib

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="not-a-secret-for-tests",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    DATA_UPLOAD_MAX_MEMORY_SIZE=None,
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402


def upload(request):
    data = request.body
    return JsonResponse({"length": len(data), "sha256": hashlib.sha256(data).hexdigest()})


urlpatterns = [path("upload", upload)]

application = get_wsgi_application()
