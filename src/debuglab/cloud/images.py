"""The mini-cloud's image service: a small glance v2 endpoint on loopback over nova's own
`GlanceFixture` (the stand-in nova's functional tests use for glance), kept on disk.

Students change images the way they would on DevStack: `openstack image create
--min-disk 40 --file f img`, `openstack image set --min-disk 40 cirros`, `glance
image-update`, openstacksdk's `update_image` (a JSON-patch PATCH), upload and download
data, tags, delete. Every change goes through the fixture's own create/update/delete, so
nova (which reads images from the same fixture) sees it at once, and is written to
`<cloud>/images.json` (data in `<cloud>/images/`), so it survives `cloud restart`. nova's
own image writes (a snapshot) are kept the same way.

Tokens are checked by keystonemiddleware, as glance does; glance's default policy is
followed where it matters here: anyone may create an image (it is theirs), only an admin
may publish one or change a public image, a project changes only its own.

It runs in the nova process under the lab's python and imports nothing from debuglab.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import logging
import os
import threading
import uuid
from urllib.parse import parse_qsl, unquote

LOG = logging.getLogger("debuglab.wsgi.image")

# glance v2's own attributes; everything else is an extra property (a string)
CORE = ("id", "name", "status", "visibility", "protected", "os_hidden", "checksum", "os_hash_algo",
        "os_hash_value", "owner", "size", "virtual_size", "min_ram", "min_disk", "container_format",
        "disk_format", "created_at", "updated_at", "tags", "direct_url", "locations", "self", "file",
        "schema", "stores")
READ_ONLY = ("id", "status", "checksum", "os_hash_algo", "os_hash_value", "size", "virtual_size",
             "created_at", "updated_at", "self", "file", "schema", "direct_url", "locations", "stores")
INTEGERS = ("min_ram", "min_disk")
BOOLEANS = ("protected", "os_hidden")
VISIBILITIES = ("public", "private", "shared", "community")
DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
TIMES = ("created_at", "updated_at", "deleted_at")
# what nova's fixture keeps beside glance's attributes (glance v1 leftovers)
FIXTURE_ONLY = ("is_public", "deleted", "deleted_at", "properties")
# oslo.middleware's max_request_body_size default: the limit nova's and Keystone's request
# pipelines enforce (413). Image data (PUT .../file) is not a request body of that kind.
MAX_REQUEST_BODY = 114688
QUOTED = 60  # characters of a request's value an error message may quote


class ImageError(Exception):
    """A request the image API refuses: HTTP status and glance's explanation."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


def _quote(value) -> str:
    """A value from the request, short enough for an error message."""
    text = repr(value)
    return text if len(text) <= QUOTED else text[:QUOTED] + f"... ({len(text)} characters)"


def valid_image_id(text) -> str:
    """An image id as glance accepts it: a UUID, in its canonical form (anything else
    could name a file outside the image folder)."""
    try:
        return str(uuid.UUID(str(text)))
    except ValueError:
        raise ImageError("400 Bad Request", f"Invalid image id {_quote(text)}: an image id is a UUID") from None


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


# --------------------------------------------------------------------------- the store


class ImageStore:
    """nova's GlanceFixture, with every change (by the API or by nova) saved to disk.

    The fixture's dict of images stays what nova reads; this class loads it at start
    and wraps the fixture's create/update/delete so that each one is saved."""

    def __init__(self, glance, state_file: str, data_dir: str):
        self.glance = glance
        self.state_file = state_file
        self.data_dir = data_dir
        self.lock = threading.RLock()
        self._load()
        for name in ("create", "update", "delete"):
            setattr(glance, name, self._saving(getattr(glance, name)))

    def _saving(self, method):
        def wrapper(*args, **kwargs):
            with self.lock:
                result = method(*args, **kwargs)
                self.save()
                return result

        wrapper.__name__ = method.__name__
        wrapper.__doc__ = method.__doc__
        return wrapper

    def _load(self) -> None:
        try:
            with open(self.state_file) as fh:
                stored = json.load(fh)
        except FileNotFoundError:
            return
        images = {}
        for image_id, image in stored.items():
            for key in TIMES:
                if isinstance(image.get(key), str):
                    image[key] = datetime.datetime.fromisoformat(image[key])
            images[image_id] = image
        self.glance.images.clear()
        self.glance.images.update(images)

    def save(self) -> None:
        def plain(value):
            if isinstance(value, datetime.datetime):
                return value.isoformat()
            if isinstance(value, (set, tuple)):
                return list(value)
            return str(value)

        with self.lock:
            text = json.dumps(self.glance.images, default=plain, indent=1, sort_keys=True)
            tmp = f"{self.state_file}.{os.getpid()}.tmp"
            with open(tmp, "w") as fh:
                fh.write(text)
            os.replace(tmp, self.state_file)

    # -- reading

    def get(self, image_id: str) -> dict:
        image = self.glance.images.get(image_id)
        if image is None:
            raise ImageError("404 Not Found", f"No image found with ID {_quote(image_id)}")
        return copy.deepcopy(image)

    def all(self) -> list[dict]:
        with self.lock:
            return copy.deepcopy(list(self.glance.images.values()))

    def data_path(self, image_id: str) -> str:
        """The file of an image's data, always directly inside the data folder."""
        folder = os.path.realpath(self.data_dir)
        path = os.path.realpath(os.path.join(folder, valid_image_id(image_id)))
        if os.path.dirname(path) != folder:
            raise ImageError("400 Bad Request", f"Invalid image id {_quote(image_id)}")
        return path

    # -- writing (through the fixture, as nova's own writes go)

    def create(self, attrs: dict, owner: str | None) -> dict:
        image_id = valid_image_id(attrs.pop("id")) if attrs.get("id") is not None else str(uuid.uuid4())
        if image_id in self.glance.images:
            raise ImageError("409 Conflict", f"An image with identifier {image_id} already exists")
        now = _now()
        image = {"id": image_id, "name": None, "status": "queued", "visibility": "shared",
                 "protected": False, "os_hidden": False, "min_ram": 0, "min_disk": 0, "size": None,
                 "virtual_size": None, "checksum": None, "os_hash_algo": None, "os_hash_value": None,
                 "container_format": None, "disk_format": None, "owner": owner, "tags": [],
                 "created_at": now, "updated_at": now, "deleted": False, "deleted_at": None,
                 "properties": {}}
        for key, value in attrs.items():
            _set(image, key, value)
        image["is_public"] = image["visibility"] == "public"
        return copy.deepcopy(self.glance.create(None, image))

    def update(self, image_id: str, change) -> dict:
        """Apply `change(image)` to a copy and store it with the fixture's update."""
        with self.lock:
            image = self.get(image_id)
            change(image)
            image["updated_at"] = _now()
            image["is_public"] = image.get("visibility") == "public"
            self.glance.update(None, image_id, image, purge_props=True)
            return self.get(image_id)

    def delete(self, image_id: str) -> None:
        with self.lock:
            self.get(image_id)
            self.glance.delete(None, image_id)
            try:
                os.unlink(self.data_path(image_id))
            except FileNotFoundError:
                pass

    def upload(self, image_id: str, chunks) -> dict:
        image = self.get(image_id)
        if image.get("status") not in ("queued", None):
            raise ImageError("409 Conflict", f"Image status transition from {image.get('status')} to saving "
                                             "is not allowed")
        os.makedirs(self.data_dir, exist_ok=True)
        md5, sha512, size = hashlib.md5(usedforsecurity=False), hashlib.sha512(), 0
        tmp = f"{self.data_path(image_id)}.{threading.get_ident()}.tmp"
        with open(tmp, "wb") as fh:
            for chunk in chunks:
                md5.update(chunk)
                sha512.update(chunk)
                size += len(chunk)
                fh.write(chunk)
        os.replace(tmp, self.data_path(image_id))

        def uploaded(img):
            img.update(status="active", size=size, virtual_size=None, checksum=md5.hexdigest(),
                       os_hash_algo="sha512", os_hash_value=sha512.hexdigest())

        return self.update(image_id, uploaded)


def _set(image: dict, key: str, value) -> None:
    """Set one attribute as glance would accept it (types checked), in the fixture's layout:
    glance's attributes at the top, extra properties in `properties`."""
    if key in INTEGERS:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ImageError("400 Bad Request", f"Invalid value for {key}: {_quote(value)} (an integer >= 0)")
    elif key in BOOLEANS:
        if not isinstance(value, bool):
            raise ImageError("400 Bad Request", f"Invalid value for {key}: {_quote(value)} (true or false)")
    elif key == "visibility":
        if value not in VISIBILITIES:
            raise ImageError("400 Bad Request", f"Invalid visibility {_quote(value)}: one of {', '.join(VISIBILITIES)}")
    elif key == "disk_format":
        if value is not None and value not in DISK_FORMATS:
            raise ImageError("400 Bad Request", f"Invalid disk format {_quote(value)}: one of {', '.join(DISK_FORMATS)}")
    elif key == "container_format":
        if value is not None and value not in CONTAINER_FORMATS:
            raise ImageError("400 Bad Request",
                             f"Invalid container format {_quote(value)}: one of {', '.join(CONTAINER_FORMATS)}")
    elif key == "tags":
        if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            raise ImageError("400 Bad Request", "tags must be a list of strings")
    elif key == "name" or key == "owner":
        if value is not None and not isinstance(value, str):
            raise ImageError("400 Bad Request", f"{key} must be a string")
    elif key in CORE:
        raise ImageError("403 Forbidden", f"Attribute {_quote(key)} is read-only.")
    if key in CORE:
        image[key] = value
        return
    if not isinstance(value, str):
        raise ImageError("400 Bad Request", f"Provided object does not match schema 'image': extra property "
                                            f"{_quote(key)} must be a string, not {_quote(value)}")
    image.setdefault("properties", {})[key] = value


def _remove(image: dict, key: str) -> None:
    if key in CORE:
        raise ImageError("403 Forbidden", f"Attribute '{key}' is read-only." if key in READ_ONLY
                         else f"Attribute '{key}' cannot be removed.")
    props = image.setdefault("properties", {})
    if key not in props:
        raise ImageError("409 Conflict", f"Property {_quote(key)} does not exist.")
    del props[key]


def apply_patch(image: dict, operations) -> None:
    """Glance's JSON-patch dialect (application/openstack-images-v2.1-json-patch):
    add/replace/remove of one top-level attribute, `/key`."""
    if not isinstance(operations, list):
        raise ImageError("400 Bad Request", "a JSON patch is a list of operations")
    for op in operations:
        if not isinstance(op, dict) or op.get("op") not in ("add", "replace", "remove") \
                or not isinstance(op.get("path"), str) or not op["path"].startswith("/"):
            raise ImageError("400 Bad Request", f"Unable to apply patch operation {_quote(op)}: "
                                                "use add, replace or remove with a path /attribute")
        key = op["path"][1:].replace("~1", "/").replace("~0", "~")
        if "/" in key:
            raise ImageError("400 Bad Request", f"Invalid JSON pointer {_quote(op['path'])}: one attribute at a time")
        if op["op"] == "remove":
            _remove(image, key)
        else:
            if "value" not in op:
                raise ImageError("400 Bad Request", f"Operation {op['op']} of {op['path']} has no value")
            if op["op"] == "replace" and key not in CORE and key not in image.get("properties", {}):
                raise ImageError("409 Conflict", f"Property {_quote(key)} does not exist.")
            _set(image, key, op["value"])


# --------------------------------------------------------------------------- the API


def as_v2(image: dict) -> dict:
    """The fixture's image as glance v2 shows it: extra properties flattened in."""
    out = {}
    for key, value in image.items():
        if key in FIXTURE_ONLY:
            continue
        if isinstance(value, datetime.datetime):
            value = value.strftime("%Y-%m-%dT%H:%M:%SZ")
        out[key] = value
    out.update({key: str(val) for key, val in (image.get("properties") or {}).items()})
    out.setdefault("visibility", "public" if image.get("is_public") else "shared")
    out.setdefault("tags", [])
    for key in ("protected", "os_hidden"):
        out.setdefault(key, False)
    for key in ("min_ram", "min_disk"):
        out[key] = int(out.get(key) or 0)
    out["self"] = f"/v2/images/{image['id']}"
    out["file"] = f"/v2/images/{image['id']}/file"
    out["schema"] = "/v2/schemas/image"
    return out


def image_schema() -> dict:
    """Enough of glance's image schema for glanceclient's warlock models."""
    string = {"type": ["null", "string"]}
    props = {key: dict(string) for key in CORE}
    props.update({
        "id": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
        "min_ram": {"type": "integer"}, "min_disk": {"type": "integer"},
        "size": {"type": ["null", "integer"]}, "virtual_size": {"type": ["null", "integer"]},
        "protected": {"type": "boolean"}, "os_hidden": {"type": "boolean"},
        "visibility": {"type": "string", "enum": list(VISIBILITIES)},
        "status": {"type": "string"},
        "locations": {"type": "array", "items": {"type": "object"}},
        "stores": {"type": "string"},
    })
    for key in READ_ONLY:
        props[key]["readOnly"] = True
    return {"name": "image", "properties": props, "additionalProperties": {"type": "string"},
            "links": [{"rel": "self", "href": "{self}"}, {"rel": "enclosure", "href": "{file}"},
                      {"rel": "describedby", "href": "{schema}"}]}


class Caller:
    """Who is asking, from keystonemiddleware's headers."""

    def __init__(self, environ: dict):
        self.project = environ.get("HTTP_X_PROJECT_ID")
        self.roles = {r.strip().lower() for r in environ.get("HTTP_X_ROLES", "").split(",") if r.strip()}

    @property
    def admin(self) -> bool:
        return "admin" in self.roles

    def sees(self, image: dict) -> bool:
        visibility = image.get("visibility") or ("public" if image.get("is_public") else "shared")
        return self.admin or visibility in ("public", "community") or image.get("owner") in (None, self.project)

    def may_change(self, image: dict) -> bool:
        if self.admin:
            return True
        if (image.get("visibility") or "") == "public" or image.get("owner") is None:
            return False
        return image.get("owner") == self.project


def _read_body(environ: dict):
    """The request body in chunks (Content-Length, or HTTP/1.1 chunked transfer coding)."""
    stream = environ["wsgi.input"]
    if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
        while True:
            size = int(stream.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while stream.readline().strip():  # trailers
                    pass
                return
            yield stream.read(size)
            stream.readline()
    length = int(environ.get("CONTENT_LENGTH") or 0)
    while length > 0:
        chunk = stream.read(min(length, 1 << 20))
        if not chunk:
            return
        length -= len(chunk)
        yield chunk


def _json_body(environ: dict):
    """The request's JSON; 413 beyond MAX_REQUEST_BODY, as nova and Keystone answer."""
    raw, size = [], 0
    for chunk in _read_body(environ):  # read to the end even when too large: the client
        size += len(chunk)             # then gets the 413 instead of a broken pipe
        if size <= MAX_REQUEST_BODY:
            raw.append(chunk)
    if size > MAX_REQUEST_BODY:
        raise ImageError("413 Request Entity Too Large",
                         f"Request is too large: the limit is {MAX_REQUEST_BODY} bytes")
    raw = b"".join(raw)
    try:
        return json.loads(raw or b"null")
    except ValueError:
        raise ImageError("400 Bad Request", "the request body is not JSON") from None


def versions(port: int) -> dict:
    return {"versions": [{"id": "v2.16", "status": "CURRENT",
                          "links": [{"rel": "self", "href": f"http://127.0.0.1:{port}/v2/"}]}]}


def make_app(store: ImageStore, port: int, authenticate=lambda app: app):
    """The WSGI application: version discovery without a token (as glance), the rest
    behind `authenticate` (keystonemiddleware's auth_token in the cloud)."""

    def v2(environ, start_response):
        try:
            status, body = _route(store, environ, Caller(environ))
        except ImageError as exc:
            status, body = exc.status, {"code": int(exc.status.split()[0]), "title": exc.status.split(" ", 1)[1],
                                        "message": str(exc)}
        if isinstance(body, tuple):  # (content type, iterable of bytes, length)
            ctype, data, length = body
            start_response(status, [("Content-Type", ctype), ("Content-Length", str(length))])
            return data
        data = b"" if body is None else json.dumps(body).encode()
        headers = [("Content-Length", str(len(data)))]
        if body is not None:
            headers.append(("Content-Type", "application/json"))
        start_response(status, headers)
        return [data]

    protected = authenticate(v2)

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "").rstrip("/")
        if path in ("", "/versions") and environ["REQUEST_METHOD"] in ("GET", "HEAD"):
            data = json.dumps(versions(port)).encode()
            start_response("300 Multiple Choices" if path == "" else "200 OK",
                           [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
            return [data]
        return protected(environ, start_response)

    return app


def _route(store: ImageStore, environ: dict, caller: Caller):
    method = environ["REQUEST_METHOD"]
    path = environ.get("PATH_INFO", "").rstrip("/")
    parts = [unquote(p) for p in path.split("/")[1:]]
    if parts[:1] != ["v2"]:
        raise ImageError("404 Not Found", f"no such resource {_quote(path)}")
    parts = parts[1:]
    if parts == []:
        return "200 OK", versions(int(environ.get("SERVER_PORT") or 0))
    if parts[0] == "schemas":
        if parts[1:] == ["image"]:
            return "200 OK", image_schema()
        if parts[1:] == ["images"]:
            return "200 OK", {"name": "images", "properties": {"images": {"type": "array", "items": image_schema()}},
                              "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"}]}
        raise ImageError("404 Not Found", f"no schema {_quote('/'.join(parts[1:]))}")
    if parts[0] != "images":
        raise ImageError("404 Not Found", f"no such resource {_quote(path)}")

    if len(parts) == 1:
        if method in ("GET", "HEAD"):
            return "200 OK", _list(store, caller, dict(parse_qsl(environ.get("QUERY_STRING", ""))))
        if method == "POST":
            attrs = _json_body(environ)
            if not isinstance(attrs, dict):
                raise ImageError("400 Bad Request", "an image is a JSON object")
            if attrs.get("visibility") == "public" and not caller.admin:
                raise ImageError("403 Forbidden", "You are not authorized to publicize an image "
                                                  "(only an admin may create a public image)")
            for key in READ_ONLY:
                if key in attrs and key != "id":
                    raise ImageError("403 Forbidden", f"Attribute '{key}' is read-only.")
            image = store.create(dict(attrs), owner=caller.project)
            LOG.info("image %s (%s) created by project %s", image["id"], image.get("name"), caller.project)
            return "201 Created", as_v2(image)
        raise ImageError("405 Method Not Allowed", f"{method} is not allowed on /v2/images")

    image = store.get(valid_image_id(parts[1]))
    if not caller.sees(image):
        raise ImageError("404 Not Found", f"No image found with ID {_quote(parts[1])}")
    image_id = image["id"]
    rest = parts[2:]
    if rest == []:
        if method in ("GET", "HEAD"):
            return "200 OK", as_v2(image)
        if method == "PATCH":
            _may_change(caller, image)
            operations = _json_body(environ)
            changed = store.update(image_id, lambda img: apply_patch(img, operations))
            LOG.info("image %s updated: %s", image_id, json.dumps(operations))
            return "200 OK", as_v2(changed)
        if method == "DELETE":
            _may_change(caller, image)
            if image.get("protected"):
                raise ImageError("403 Forbidden", f"Image {image_id} is protected and cannot be deleted.")
            store.delete(image_id)
            LOG.info("image %s deleted", image_id)
            return "204 No Content", None
    elif rest == ["file"]:
        if method == "PUT":
            _may_change(caller, image)
            changed = store.upload(image_id, _read_body(environ))
            LOG.info("image %s: %d bytes uploaded", image_id, changed["size"])
            return "204 No Content", None
        if method in ("GET", "HEAD"):
            path = store.data_path(image_id)
            if not os.path.exists(path):
                if image.get("status") == "queued":
                    return "204 No Content", None  # glance's answer for an image without data
                raise ImageError("404 Not Found", f"Image {image_id} has no data")
            length = os.path.getsize(path)

            def chunks():
                with open(path, "rb") as fh:
                    while chunk := fh.read(1 << 16):
                        yield chunk

            return "200 OK", ("application/octet-stream", chunks() if method == "GET" else [], length)
    elif len(rest) == 2 and rest[0] == "tags" and method in ("PUT", "DELETE"):
        _may_change(caller, image)
        tag = rest[1]

        def retag(img):
            tags = [t for t in img.get("tags", []) if t != tag]
            if method == "PUT":
                tags.append(tag)
            elif tag not in img.get("tags", []):
                raise ImageError("404 Not Found", f"Tag {_quote(tag)} not found")
            img["tags"] = tags

        store.update(image_id, retag)
        return "204 No Content", None
    raise ImageError("405 Method Not Allowed" if rest in ([], ["file"]) else "404 Not Found",
                     f"{method} {_quote(path)} is not supported by the lab's image service")


def _may_change(caller: Caller, image: dict) -> None:
    if not caller.may_change(image):
        why = ("it is public: only an admin may change it" if image.get("visibility") == "public"
               else "it belongs to another project")
        raise ImageError("403 Forbidden", f"You are not authorized to change image {image['id']}: {why}")


def _list(store: ImageStore, caller: Caller, query: dict) -> dict:
    images = [as_v2(i) for i in store.all() if caller.sees(i)]
    for key in ("name", "id", "status", "visibility", "owner", "disk_format", "container_format"):
        if key in query:
            wanted = query[key][3:].split(",") if query[key].startswith("in:") else [query[key]]
            images = [i for i in images if str(i.get(key)) in wanted]
    if "tag" in query:
        images = [i for i in images if query["tag"] in i.get("tags", [])]
    images.sort(key=lambda i: (i.get("created_at") or "", i["id"]), reverse=True)
    if "marker" in query:
        ids = [i["id"] for i in images]
        images = images[ids.index(query["marker"]) + 1:] if query["marker"] in ids else []
    body = {"images": images, "first": "/v2/images", "schema": "/v2/schemas/images"}
    if "limit" in query:
        limit = int(query["limit"])
        if len(images) > limit:
            body["next"] = f"/v2/images?marker={images[limit - 1]['id']}&limit={limit}"
        body["images"] = images[:limit]
    return body
