"""The student's side of grading: a process that runs the student's functions and returns what they give.

``runner`` starts it as ``python -c BOOT`` with its stdin connected to a socket that the grader owns;
nothing on its command line names a file. It holds nothing worth forging: no expected values and no
verdicts. It receives a configuration, imports the student's file, then answers calls
``{"call": name, "args": ..., "kwargs": ...}`` with the raw result, or with the exception the function
raised. Whatever the student's code prints or writes anywhere cannot become a result: the grader
compares the returned arrays with the engine's in its own process.

This file imports only the standard library and NumPy (CuPy for a GPU), so tinyalex is never in
``sys.modules`` when the student's file runs, and a guard on ``sys.meta_path`` refuses to import it
(or anything under its folder) afterwards. The grader imports this module too, for the wire format:
``send`` and ``receive`` move JSON trees whose arrays travel as raw bytes with dtype and shape, so
no pickle ever crosses the socket, and objects that are neither arrays nor plain values (a student's
cache) stay here, known to the grader only as a ``Ref``.
"""
import importlib.abc
import importlib.util
import json
import os
import resource
import socket
import struct
import sys
import traceback

import numpy as np

HEADER_LIMIT = 16 << 20  # a reply's JSON part; arrays are limited by the worker's memory limit
KINDS = "biufc"  # dtypes that may cross: bool, integers, floats, complex (never object or void)


class ProtocolError(Exception):
    """A message that is not what the wire format allows (a student writing to the socket, say)."""


class Ref:
    """An object that stayed in the worker (``type_name`` says what it was); passed back by id."""

    def __init__(self, ref_id, type_name):
        self.id, self.type_name = ref_id, type_name

    def __repr__(self):
        return f"<{self.type_name} in the student's process>"


# ------------------------------------------------------------------ the wire format
def _encode(obj, blobs, keep):
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, Ref):
        return {"ref": obj.id}
    if isinstance(obj, (list, tuple)):
        return {type(obj).__name__: [_encode(x, blobs, keep) for x in obj]}
    if isinstance(obj, dict) and all(isinstance(k, str) for k in obj):
        return {"dict": [[k, _encode(v, blobs, keep)] for k, v in obj.items()]}
    if hasattr(obj, "__cuda_array_interface__") and hasattr(obj, "get"):
        obj = obj.get()  # a CuPy array travels as its NumPy copy
    if isinstance(obj, (np.ndarray, np.generic)) and obj.dtype.kind in KINDS:
        a = np.ascontiguousarray(obj)
        blobs.append(a.tobytes())
        return {"array": len(blobs) - 1, "dtype": a.dtype.str, "shape": list(a.shape)}
    return keep(obj)


def _refuse(obj):
    raise TypeError(f"cannot send a {type(obj).__name__} to the student's process")


def send(sock, obj, keep=_refuse):
    """Write ``obj`` as one message: 8 bytes of header length, the JSON header, the arrays' bytes.

    ``keep(obj)`` turns what is neither a plain value nor an array into a JSON node (the worker keeps
    the object and sends ``{"ref": id, "type": name}``); by default such an object is a TypeError.
    """
    blobs = []
    tree = _encode(obj, blobs, keep)
    header = json.dumps({"tree": tree, "sizes": [len(b) for b in blobs]}).encode()
    sock.sendall(struct.pack(">Q", len(header)) + header + b"".join(blobs))


def _read(sock, n):
    chunks = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the connection")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def receive(sock, ref=Ref, place=lambda a: a):
    """Read one message written by ``send``; ``ref(id, type_name)`` rebuilds a kept object's node and
    ``place(array)`` puts each array where it is wanted (the worker: on the GPU with --device cuda).

    Raises ProtocolError for anything malformed (oversized header, bad JSON, an array whose dtype is
    not bool/int/float/complex or whose bytes do not match its shape), EOFError at end of stream.
    """
    (length,) = struct.unpack(">Q", _read(sock, 8))
    if length > HEADER_LIMIT:
        raise ProtocolError(f"a message header of {length} bytes (at most {HEADER_LIMIT})")
    try:
        header = json.loads(_read(sock, length))
        blobs = [_read(sock, int(n)) for n in header["sizes"]]
        return _decode(header["tree"], blobs, ref, place)
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise ProtocolError(f"a malformed message ({type(e).__name__}: {e})") from None


def _decode(node, blobs, ref, place):
    if isinstance(node, list):
        raise ValueError("a bare JSON list")
    if not isinstance(node, dict):
        return node
    if "array" in node:
        dtype = np.dtype(node["dtype"])
        if dtype.kind not in KINDS:
            raise ValueError(f"an array of dtype {dtype} (only bool, integer, float and complex arrays)")
        blob, shape = blobs[node["array"]], tuple(int(d) for d in node["shape"])
        if len(blob) != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise ValueError(f"{len(blob)} bytes for an array {shape} of {dtype}")
        return place(np.frombuffer(bytearray(blob), dtype).reshape(shape))
    if "ref" in node:
        return ref(node["ref"], str(node.get("type", "object")))
    (tag, items), = node.items()
    if tag == "dict":
        return {str(k): _decode(v, blobs, ref, place) for k, v in items}
    if tag not in ("list", "tuple"):
        raise ValueError(f"an unknown node {tag!r}")
    items = [_decode(x, blobs, ref, place) for x in items]
    return items if tag == "list" else tuple(items)


# ------------------------------------------------------------------ the student's process
class Guard(importlib.abc.MetaPathFinder):
    """Refuses imports of the top-level packages ``names`` and of any module found under ``folder``
    (so loading the engine's files under another package name fails too)."""

    def __init__(self, names, folder, message):
        self.names, self.folder, self.message = set(names), os.path.realpath(folder), message

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.names:
            raise ImportError(self.message.format(name=name), name=name)
        for finder in sys.meta_path:
            spec = None if finder is self or not hasattr(finder, "find_spec") else finder.find_spec(name, path, target)
            if spec is not None:
                if spec.origin and os.path.realpath(spec.origin).startswith(self.folder + os.sep):
                    raise ImportError(self.message.format(name=name), name=name)
                return spec
        return None


def load(path):
    """Import a Python file as a fresh module named after it (its top level runs here)."""
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _where(error, path):
    """' (line N: text)' for the deepest frame of the traceback in the student's file."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == path]
    return f" (line {frames[-1].lineno}: {frames[-1].line})" if frames else ""


def _limit(memory_mb):
    """Soft and hard limits at once: the student's code cannot raise a hard limit again."""
    data = memory_mb << 20
    resource.setrlimit(resource.RLIMIT_DATA, (data, data))
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 20, 64 << 20))  # no file of its own fills the disk


def serve(channel, config):
    """Import the student's file, then answer calls until the grader closes the socket."""
    _limit(config["memory_mb"])
    place = lambda a: a
    if config["device"] != "cpu":
        import cupy  # noqa: PLC0415 (only with --device cuda)
        cupy.cuda.Device(int(config["device"].partition(":")[2] or 0)).use()
        place = cupy.asarray
    if not config["engine"]:
        for name in [m for m in sys.modules if m.partition(".")[0] in config["blocked"]]:
            del sys.modules[name]
        sys.meta_path.insert(0, Guard(config["blocked"], config["folder"], config["message"]))
    path = config["file"]
    try:
        module = load(path)
    except BaseException as e:  # SystemExit and KeyboardInterrupt too: the file's top level is its own
        send(channel, {"import_error": f"importing {os.path.basename(path)} raised {type(e).__name__}: {e}"})
        return
    send(channel, {"ready": True})
    kept = {}

    def keep(obj):
        kept[id(obj)] = obj
        return {"ref": id(obj), "type": type(obj).__name__}
    while True:
        try:
            message = receive(channel, lambda ref_id, _: kept[ref_id], place)
        except EOFError:
            return
        for ref_id in message.get("free", ()):
            kept.pop(ref_id, None)
        fn = getattr(module, message["call"], None)
        if not callable(fn):
            send(channel, {"missing": True})
            continue
        try:
            result = fn(*message["args"], **message["kwargs"])
            send(channel, {"result": result}, keep)
        except NotImplementedError:
            send(channel, {"not_implemented": True})
        except BaseException as e:
            send(channel, {"raised": type(e).__name__, "message": str(e), "where": _where(e, path)})


def main():
    del sys.path[0]  # '' (the temporary folder) for python -c: the student's imports see no extra folder
    channel = socket.socket(fileno=os.dup(0))
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    serve(channel, receive(channel))
