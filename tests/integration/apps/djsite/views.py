import json

from django.http import (Http404, HttpResponse, HttpResponseRedirect, JsonResponse,
                         StreamingHttpResponse)


def index(request):
    return HttpResponse("Hello from Django")


def hello(request, name):
    return HttpResponse(f"Hello, {name}! {request.GET.get('q', '')}")


def form(request):
    if request.method == "POST":
        return JsonResponse({"name": request.POST.get("name"),
                             "tags": request.POST.getlist("tag")})
    return HttpResponse("<form method=post></form>")


def upload(request):
    f = request.FILES["file"]
    return JsonResponse({"filename": f.name, "size": len(f.read()),
                         "note": request.POST.get("note")})


def body(request):
    return JsonResponse({"got": json.loads(request.body or b"null"),
                         "path": request.path, "path_info": request.path_info})


def go(request):
    return HttpResponseRedirect("/hello/redirected/")


def cookie_set(request):
    r = HttpResponse("set")
    r.set_cookie("flavour", "oatmeal", httponly=True)
    return r


def cookie_get(request):
    return HttpResponse(request.COOKIES.get("flavour", "none"))


def session_set(request, value):
    request.session["value"] = value
    return HttpResponse("stored")


def session_get(request):
    return HttpResponse(request.session.get("value", "empty"))


def missing(request):
    raise Http404("nope")


def crash(request):
    raise RuntimeError("unhandled in a view")


def stream(request):
    return StreamingHttpResponse(b"%d\n" % i for i in range(100))
