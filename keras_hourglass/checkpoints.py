"""PyTorch checkpoints read without PyTorch: both serializations, into NumPy arrays.

    obj = read_torch_checkpoint("checkpoint.pt")   # dicts, lists, numbers, strings, np.ndarray

- The zip format (`torch.save` since PyTorch 1.6): a zip archive holding `<name>/data.pkl` (the
  pickled object) and one file `<name>/data/<key>` of raw bytes per storage.
- The legacy format (PyTorch <= 1.5, and `_use_new_zipfile_serialization=False`): five pickles in
  a row (magic number, protocol version, system info, the object, the list of storage keys), then
  each storage as an 8-byte element count and its raw bytes. Python 2 pickles (PyTorch 0.x under
  Python 2, e.g. bearpaw/pytorch-pose's 2017 checkpoints) are read with their strings as text.

A pickle can run code. The unpickler here builds only what a checkpoint of weights holds: dicts
and ordered dicts, lists and tuples, numbers, strings, and tensors rebuilt from their storages
(`torch._utils._rebuild_tensor_v2` and its older forms, typed storages); any other global (a
function such as `os.system`, a class) is refused with `CheckpointError` before anything is
called. Storage location tags (`cpu`, `cuda:0`, ...) and GPU storage classes
(`torch.cuda.FloatStorage`, as the published GPU-trained legacy files name them) are only labels
here: every tensor becomes a NumPy array in memory. A file cut short (an interrupted download)
is called truncated. Little-endian storages only (every x86 and ARM machine writes those).
"""

import collections
import contextlib
import io
import os
import pickle
import struct
import zipfile

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# Typed storages (what PyTorch writes in both formats) -> NumPy dtypes.
STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
BFLOAT16 = "BFloat16Storage"  # no NumPy dtype: widened to float32 when read


class CheckpointError(ValueError):
    """A file that is not a readable PyTorch checkpoint, or one that asks to run code."""


class _StorageType:
    """A typed storage class named in the pickle (only its name and dtype matter)."""

    def __init__(self, name):
        self.name = name


class _Storage:
    """A storage read from the file: raw bytes, its dtype and the name it had."""

    def __init__(self, data, type_name, location, where):
        self.type_name, self.location = type_name, location
        if type_name == BFLOAT16:
            if len(data) % 2:
                raise CheckpointError(f"{where}: a bfloat16 storage of {len(data)} bytes")
            bits = np.frombuffer(data, "<u2").astype(np.uint32) << 16
            self.array = bits.view(np.float32)
        else:
            dtype = np.dtype(STORAGE_DTYPES[type_name]).newbyteorder("<")
            if len(data) % dtype.itemsize:
                raise CheckpointError(
                    f"{where}: a {type_name} of {len(data)} bytes is not whole elements"
                )
            self.array = np.frombuffer(data, dtype)


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    """A tensor (as a NumPy array) from a storage, offset, shape and strides in elements."""
    if not isinstance(storage, _Storage):
        raise CheckpointError(f"a tensor refers to {type(storage).__name__}, not a storage")
    size = tuple(int(d) for d in size)
    stride = tuple(int(d) for d in stride) if stride is not None else None
    if stride is None:  # contiguous
        stride = tuple(int(np.prod(size[i + 1 :])) for i in range(len(size)))
    if len(stride) != len(size) or any(d < 0 for d in size) or any(s < 0 for s in stride):
        raise CheckpointError(f"a tensor has shape {size} and strides {stride}")
    data = storage.array
    if any(d == 0 for d in size):
        return np.zeros(size, data.dtype)
    last = int(storage_offset) + sum((d - 1) * s for d, s in zip(size, stride))
    if storage_offset < 0 or last >= len(data):
        raise CheckpointError(
            f"a tensor of shape {size} at offset {storage_offset} runs past its storage of "
            f"{len(data)} elements (a truncated or corrupt file)"
        )
    view = np.lib.stride_tricks.as_strided(
        data[int(storage_offset) :], size, [s * data.itemsize for s in stride]
    )
    return np.array(view)  # a copy: writable, contiguous, no reference to the file's bytes


def _rebuild_parameter(data, *unused):
    return data


def _ordered_dict(*args):
    return collections.OrderedDict(*args)


# (module, name) -> what the unpickler builds for it; everything else is refused.
_ALLOWED = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.nn.parameter", "Parameter"): _rebuild_parameter,
}


class _Unpickler(pickle._Unpickler):
    """Builds only allow-listed objects; storages come from `storages(pid)`, tensors from
    `rebuild(storage, offset, size, stride, ...)`.

    The pure-Python unpickler, not the C one: its memo is a dict, where the C unpickler's is an
    array that a corrupt memo index (say 2**31) makes it allocate and clear, for half a minute.
    A checkpoint's pickle is small (its tensors' bytes live outside it), so the speed is moot."""

    def __init__(self, file, storages, where, encoding="utf-8", rebuild=_rebuild_tensor):
        super().__init__(file, encoding=encoding)
        self.storages, self.where, self.rebuild = storages, where, rebuild

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            found = _ALLOWED[(module, name)]
            return self.rebuild if found is _rebuild_tensor else found
        # A GPU-trained legacy file types its storages as the GPU's (torch.cuda.FloatStorage):
        # the same bytes, read as the CPU's (a name on the allow-list, never code).
        if module in ("torch", "torch.cuda") and (name in STORAGE_DTYPES or name == BFLOAT16):
            return _StorageType(name)
        if (module, name) == ("torch", "device"):
            return str
        raise CheckpointError(
            f"{self.where}: the checkpoint asks for {module}.{name}, which a checkpoint of "
            "weights does not need; refused without running it (a pickle can run code)"
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise CheckpointError(f"{self.where}: unknown persistent id {pid!r:.80}")
        return self.storages(pid)


@contextlib.contextmanager
def _readable(where, at_end=None):
    """Whatever a malformed pickle raises (EOFError, UnpicklingError, ValueError, TypeError,
    MemoryError, RecursionError, ...) as one CheckpointError naming the file; an error at the
    end of the bytes (EOFError, or `at_end()` true) says the file is truncated."""
    try:
        yield
    except CheckpointError:
        raise
    except Exception as error:
        if isinstance(error, EOFError) or (at_end is not None and at_end()):
            raise CheckpointError(
                f"{where}: the file ends early: a truncated checkpoint (an interrupted download "
                "or copy?)"
            ) from None
        detail = str(error).splitlines()[0] if str(error) else ""
        raise CheckpointError(
            f"{where}: not a readable PyTorch checkpoint ({type(error).__name__}"
            + (f": {detail[:200]})" if detail else ")")
        ) from None


def _type_name(storage_type, where):
    if isinstance(storage_type, _StorageType):
        return storage_type.name
    raise CheckpointError(f"{where}: a storage of unknown type {storage_type!r:.60}")


def _read_zip(path, archive):
    names = archive.namelist()
    pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
    if len(pickles) != 1:
        raise CheckpointError(f"{path}: a zip file without one data.pkl (not a torch.save file)")
    prefix = pickles[0][: -len("data.pkl")]
    cache = {}

    def storage(pid):
        if len(pid) != 5:
            raise CheckpointError(f"{path}: a storage reference {pid!r:.80}")
        _, storage_type, key, location, numel = pid
        if key not in cache:
            member = f"{prefix}data/{key}"
            if member not in names:
                raise CheckpointError(f"{path}: the storage {key!r} is missing")
            type_name = _type_name(storage_type, path)
            cache[key] = _Storage(archive.read(member), type_name, str(location), path)
        return cache[key]

    with _readable(path):
        return _Unpickler(io.BytesIO(archive.read(pickles[0])), storage, path).load()


def _read_legacy(path, f):
    def load_plain():
        return _Unpickler(f, lambda pid: None, path, encoding="latin1").load()

    with _readable(path, at_end=lambda: _remaining(f) == 0):
        magic = load_plain()
        if magic != LEGACY_MAGIC:
            raise CheckpointError(f"{path}: not a PyTorch checkpoint (no magic number)")
        protocol = load_plain()
        if protocol != LEGACY_PROTOCOL:
            raise CheckpointError(
                f"{path}: legacy format version {protocol!r:.40}, not {LEGACY_PROTOCOL}"
            )
        sys_info = load_plain()
        if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
            raise CheckpointError(f"{path}: written on a big-endian machine (not supported)")
        references = {}

        def storage(pid):
            if len(pid) != 6:
                raise CheckpointError(f"{path}: a storage reference {pid!r:.80}")
            _, storage_type, key, location, size, view = pid
            if view is not None:
                raise CheckpointError(f"{path}: storage views (PyTorch < 0.4 files) are not read")
            references.setdefault(str(key), (_type_name(storage_type, path), str(location)))
            return str(key)

        # The storages are written after the object: unpickle it with pending tensors first,
        # read the storages, then rebuild the tensors.
        obj = _Unpickler(f, storage, path, encoding="latin1", rebuild=_Pending).load()
        keys = load_plain()
        if not isinstance(keys, list):
            raise CheckpointError(f"{path}: no storage key list after the object")
        storages = {}
        for key in keys:
            key = str(key)
            if key not in references:
                raise CheckpointError(f"{path}: storage {key!r} is not used by the object")
            type_name, location = references[key]
            head = f.read(8)
            if len(head) < 8:
                raise CheckpointError(
                    f"{path}: the file ends before storage {key!r}: a truncated checkpoint"
                )
            (count,) = struct.unpack("<q", head)
            itemsize = 2 if type_name == BFLOAT16 else np.dtype(STORAGE_DTYPES[type_name]).itemsize
            if count < 0 or count * itemsize > _remaining(f):
                raise CheckpointError(
                    f"{path}: storage {key!r} claims {count} elements, more than the file holds "
                    "(a truncated or corrupt file)"
                )
            storages[key] = _Storage(f.read(count * itemsize), type_name, location, path)
        missing = sorted(set(references) - set(storages))
        if missing:
            raise CheckpointError(f"{path}: storages {missing[:5]} are missing (a truncated file)")
        return _resolve(obj, storages, path)


class _Pending:
    """A tensor whose storage is not read yet (legacy format)."""

    def __init__(self, storage, offset, size, stride, *unused):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


def _resolve(obj, storages, where, depth=0):
    """Replaces pending tensors by NumPy arrays now that the storages are read."""
    if depth > 100:
        raise CheckpointError(f"{where}: the object is nested too deeply")
    if isinstance(obj, _Pending):
        key = obj.storage if isinstance(obj.storage, str) else None
        if key not in storages:
            raise CheckpointError(f"{where}: a tensor refers to an unknown storage")
        return _rebuild_tensor(storages[key], obj.offset, obj.size, obj.stride)
    if isinstance(obj, dict):
        out = type(obj)() if isinstance(obj, collections.OrderedDict) else {}
        for k, v in obj.items():
            out[k] = _resolve(v, storages, where, depth + 1)
        return out
    if isinstance(obj, (list, tuple)):
        items = [_resolve(v, storages, where, depth + 1) for v in obj]
        return items if isinstance(obj, list) else tuple(items)
    return obj


def _remaining(f):
    here = f.tell()
    f.seek(0, os.SEEK_END)
    end = f.tell()
    f.seek(here)
    return end - here


def read_torch_checkpoint(path):
    """The object a `torch.save` file holds, with every tensor as a NumPy array.

    Raises `CheckpointError` (naming the file) for anything that is not a readable checkpoint:
    another kind of file, a file cut short, a pickle that asks for code to run.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such file")
    with _readable(path):  # zipfile raises BadZipFile, OSError, EOFError, UnicodeDecodeError...
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return _read_zip(path, archive)
    with open(path, "rb") as f:
        data = f.read()  # in memory: a length a corrupt file claims is never allocated
    if data[:4] == b"PK\x03\x04":  # a zip's first entry, but no central directory at the end
        raise CheckpointError(
            f"{path}: a zip archive without its end (its central directory): a truncated "
            "checkpoint (an interrupted download or copy?)"
        )
    if len(data) < 2 or data[0] != 0x80:
        raise CheckpointError(
            f"{path}: not a PyTorch checkpoint (neither a zip archive nor a pickle)"
        )
    return _read_legacy(path, io.BytesIO(data))
