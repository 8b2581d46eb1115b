"""embergpt through ctypes: a thin Python binding of the C API (libembergpt.so).

The library is found through $EMBERGPT_LIB, else next to this file's repository
(target/capi/release, target/release), else by the system loader.

    from embergpt import Model, Context
    model = Model(open("model.gguf", "rb").read())
    ctx = Context(model, n_batch=8)
    ctx.eval([1, 2, 3])
    logits = ctx.logits()          # list of n_vocab floats (a copy)

Memory follows the C API: the model handle and the arena are Python-owned
ctypes buffers kept alive by the objects; the library allocates nothing.
"""
import ctypes
import os
from ctypes import (POINTER, Structure, byref, c_char, c_char_p, c_float, c_int, c_int32,
                    c_size_t, c_uint8, c_uint32, c_void_p, CFUNCTYPE)

EGPT_OK = 0
ARCH_NAME_LEN = 32


def _find_library():
    env = os.environ.get("EMBERGPT_LIB")
    if env:
        return env
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for sub in ("target/capi/release", "target/release"):
        p = os.path.join(root, sub, "libembergpt.so")
        if os.path.exists(p):
            return p
    return "libembergpt.so"


_lib = ctypes.CDLL(_find_library())

egpt_status = c_uint32
egpt_backend = c_int32
_task_fn = CFUNCTYPE(None, c_void_p, c_size_t)
_parallel_for_fn = CFUNCTYPE(None, c_void_p, c_size_t, _task_fn, c_void_p)


class ModelInfo(Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("architecture", c_char * ARCH_NAME_LEN),
        ("n_vocab", c_size_t),
        ("n_ctx", c_size_t),
        ("n_embd", c_size_t),
        ("n_ff", c_size_t),
        ("n_layer", c_size_t),
        ("n_head", c_size_t),
        ("n_head_kv", c_size_t),
        ("n_tensors", c_size_t),
        ("weight_type", c_uint32),
        ("gguf_version", c_uint32),
        ("tied_output", c_int32),
        ("norm_eps", c_float),
    ]


class ContextParams(Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("n_ctx", c_size_t),
        ("n_batch", c_size_t),
        ("logits_all", c_int32),
        ("backend", egpt_backend),
        ("parallel_for", _parallel_for_fn),
        ("parallel_user", c_void_p),
        ("parallel_n_tasks", c_size_t),
    ]


def _fn(name, restype, *argtypes):
    f = getattr(_lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


_version = _fn("egpt_version", c_char_p)
_abi_version = _fn("egpt_abi_version", c_uint32)
_status_str = _fn("egpt_status_str", c_char_p, egpt_status)
_backend_name = _fn("egpt_backend_name", c_char_p, egpt_backend)
_type_name = _fn("egpt_type_name", c_char_p, c_uint32)
_model_size = _fn("egpt_model_size", c_size_t)
_model_open = _fn("egpt_model_open", egpt_status, POINTER(c_uint8), c_size_t, c_void_p, c_size_t,
                  POINTER(c_void_p))
_model_get_info = _fn("egpt_model_get_info", egpt_status, c_void_p, POINTER(ModelInfo))
_model_tensor_type = _fn("egpt_model_tensor_type", egpt_status, c_void_p, c_char_p, c_size_t,
                         POINTER(c_uint32))
_default_params = _fn("egpt_context_default_params", ContextParams)
_arena_size = _fn("egpt_context_arena_size", egpt_status, c_void_p, POINTER(ContextParams),
                  POINTER(c_size_t))
_create = _fn("egpt_context_create", egpt_status, c_void_p, POINTER(ContextParams), c_void_p,
              c_size_t, POINTER(c_void_p))
_eval = _fn("egpt_context_eval", egpt_status, c_void_p, POINTER(c_uint32), c_size_t)
_eval_all = _fn("egpt_context_eval_all", egpt_status, c_void_p, POINTER(c_uint32), c_size_t)
_logits = _fn("egpt_context_logits", egpt_status, c_void_p, POINTER(POINTER(c_float)),
              POINTER(c_size_t))
_all_logits = _fn("egpt_context_all_logits", egpt_status, c_void_p, POINTER(POINTER(c_float)),
                  POINTER(c_size_t), POINTER(c_size_t))
_rewind = _fn("egpt_context_rewind", egpt_status, c_void_p, c_size_t)
_reset = _fn("egpt_context_reset", egpt_status, c_void_p)
_n_past = _fn("egpt_context_n_past", egpt_status, c_void_p, POINTER(c_size_t))
_backend = _fn("egpt_context_backend", egpt_status, c_void_p, POINTER(egpt_backend))


def version():
    return _version().decode()


def abi_version():
    return _abi_version()


def status_str(status):
    return _status_str(status).decode()


def type_name(ggml_type):
    return _type_name(ggml_type).decode()


class EmberError(Exception):
    """A non-OK egpt_status; `.status` is the code, str() its message."""

    def __init__(self, what, status):
        super().__init__(f"{what}: {status_str(status)} (status {status})")
        self.status = status


def _check(what, status):
    if status != EGPT_OK:
        raise EmberError(what, status)


class Model:
    """A model over GGUF bytes (copied once into a ctypes buffer this object keeps)."""

    def __init__(self, data):
        self._bytes = (c_uint8 * len(data)).from_buffer_copy(data)
        self._mem = ctypes.create_string_buffer(_model_size())
        h = c_void_p()
        _check("egpt_model_open",
               _model_open(self._bytes, len(data), self._mem, len(self._mem), byref(h)))
        self._h = h

    @property
    def handle(self):
        return self._h

    def info(self):
        i = ModelInfo()
        i.struct_size = ctypes.sizeof(ModelInfo)
        _check("egpt_model_get_info", _model_get_info(self._h, byref(i)))
        return i

    def tensor_type(self, name):
        b = name.encode()
        t = c_uint32()
        _check("egpt_model_tensor_type", _model_tensor_type(self._h, b, len(b), byref(t)))
        return t.value


class Context:
    """A context with its own arena, sized by the library."""

    def __init__(self, model, n_ctx=0, n_batch=None, logits_all=False, backend=0):
        p = _default_params()
        p.n_ctx = n_ctx
        if n_batch is not None:
            p.n_batch = n_batch
        p.logits_all = 1 if logits_all else 0
        p.backend = backend
        n = c_size_t()
        _check("egpt_context_arena_size", _arena_size(model.handle, byref(p), byref(n)))
        self.model = model  # keeps the model bytes alive
        self.arena_size = n.value
        self._arena = ctypes.create_string_buffer(n.value)
        h = c_void_p()
        _check("egpt_context_create",
               _create(model.handle, byref(p), self._arena, n.value, byref(h)))
        self._h = h
        self.n_vocab = model.info().n_vocab

    @staticmethod
    def _tokens(tokens):
        return (c_uint32 * len(tokens))(*tokens), len(tokens)

    def eval(self, tokens):
        arr, n = self._tokens(tokens)
        _check("egpt_context_eval", _eval(self._h, arr, n))

    def eval_all(self, tokens):
        arr, n = self._tokens(tokens)
        _check("egpt_context_eval_all", _eval_all(self._h, arr, n))

    def logits(self):
        p = POINTER(c_float)()
        n = c_size_t()
        _check("egpt_context_logits", _logits(self._h, byref(p), byref(n)))
        return p[: n.value]

    def all_logits(self):
        """Rows of the last eval_all as a list of lists."""
        p = POINTER(c_float)()
        rows, n = c_size_t(), c_size_t()
        _check("egpt_context_all_logits", _all_logits(self._h, byref(p), byref(rows), byref(n)))
        flat = p[: rows.value * n.value]
        return [flat[r * n.value:(r + 1) * n.value] for r in range(rows.value)]

    def rewind(self, pos):
        _check("egpt_context_rewind", _rewind(self._h, pos))

    def reset(self):
        _check("egpt_context_reset", _reset(self._h))

    @property
    def n_past(self):
        n = c_size_t()
        _check("egpt_context_n_past", _n_past(self._h, byref(n)))
        return n.value

    @property
    def backend(self):
        b = egpt_backend()
        _check("egpt_context_backend", _backend(self._h, byref(b)))
        return _backend_name(b.value).decode()


def argmax(values):
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best


# --- text: tokenizer, sampler, generation ----------------------------------------------

NO_TOKEN = 0xFFFFFFFF
ERR_BUFFER_TOO_SMALL = 90
STOP_REASONS = {1: "eos", 2: "stop_string", 3: "budget", 4: "context_full", 5: "callback"}


class TokenizerInfo(Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("n_vocab", c_size_t),
        ("n_merges", c_size_t),
        ("max_token_len", c_size_t),
        ("bos", c_uint32),
        ("eos", c_uint32),
    ]


class SamplerParams(Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("temperature", c_float),
        ("top_k", c_size_t),
        ("top_p", c_float),
        ("min_p", c_float),
        ("repeat_penalty", c_float),
        ("presence_penalty", c_float),
        ("frequency_penalty", c_float),
        ("penalty_last_n", c_size_t),
        ("seed", ctypes.c_uint64),
    ]


class GenerateParams(Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("max_tokens", c_size_t),
        ("stop_strings", POINTER(c_char_p)),
        ("stop_lens", POINTER(c_size_t)),
        ("n_stop", c_size_t),
        ("stop_at_eos", c_int32),
    ]


class GenerateResult(Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("stop_reason", c_uint32),
        ("stop_index", c_int32),
        ("n_sampled", c_size_t),
        ("n_emitted", c_size_t),
        ("unevaluated", c_uint32),
    ]


_token_cb = CFUNCTYPE(c_int, c_void_p, c_uint32, POINTER(c_char), c_size_t)

_tok_arena_size = _fn("egpt_tokenizer_arena_size", egpt_status, c_void_p, POINTER(c_size_t))
_tok_create = _fn("egpt_tokenizer_create", egpt_status, c_void_p, c_void_p, c_size_t,
                  POINTER(c_void_p))
_tok_arena_size_gguf = _fn("egpt_tokenizer_arena_size_gguf", egpt_status, POINTER(c_uint8),
                           c_size_t, POINTER(c_size_t))
_tok_create_gguf = _fn("egpt_tokenizer_create_gguf", egpt_status, POINTER(c_uint8), c_size_t,
                       c_void_p, c_size_t, POINTER(c_void_p))
_tok_info = _fn("egpt_tokenizer_get_info", egpt_status, c_void_p, POINTER(TokenizerInfo))
_tokenize = _fn("egpt_tokenize", egpt_status, c_void_p, c_char_p, c_size_t, c_int,
                POINTER(c_uint32), c_size_t, POINTER(c_size_t))
_token_to_piece = _fn("egpt_token_to_piece", egpt_status, c_void_p, c_uint32, c_void_p, c_size_t,
                      POINTER(c_size_t))
_detokenize = _fn("egpt_detokenize", egpt_status, c_void_p, POINTER(c_uint32), c_size_t, c_int,
                  c_void_p, c_size_t, POINTER(c_size_t))
_sampler_default = _fn("egpt_sampler_default_params", SamplerParams)
_sampler_greedy = _fn("egpt_sampler_greedy_params", SamplerParams)
_sampler_arena_size = _fn("egpt_sampler_arena_size", egpt_status, c_void_p, POINTER(SamplerParams),
                          POINTER(c_size_t))
_sampler_create = _fn("egpt_sampler_create", egpt_status, c_void_p, POINTER(SamplerParams),
                      c_void_p, c_size_t, POINTER(c_void_p))
_sampler_sample = _fn("egpt_sampler_sample", egpt_status, c_void_p, POINTER(c_float), c_size_t,
                      POINTER(c_uint32))
_sampler_accept = _fn("egpt_sampler_accept", egpt_status, c_void_p, c_uint32)
_sampler_reset = _fn("egpt_sampler_reset", egpt_status, c_void_p)
_generate_default = _fn("egpt_generate_default_params", GenerateParams)
_generate = _fn("egpt_generate", egpt_status, c_void_p, c_void_p, c_void_p, POINTER(c_uint32),
                c_size_t, POINTER(GenerateParams), _token_cb, c_void_p, POINTER(GenerateResult))


class Tokenizer:
    """GPT-2 byte-level BPE: Tokenizer(model) or Tokenizer.from_gguf(bytes)."""

    def __init__(self, model=None, _gguf=None):
        n = c_size_t()
        h = c_void_p()
        if model is not None:
            self.model = model  # keeps the model bytes alive
            _check("egpt_tokenizer_arena_size", _tok_arena_size(model.handle, byref(n)))
            self._arena = ctypes.create_string_buffer(n.value)
            _check("egpt_tokenizer_create",
                   _tok_create(model.handle, self._arena, n.value, byref(h)))
        else:
            self._bytes = (c_uint8 * len(_gguf)).from_buffer_copy(_gguf)
            _check("egpt_tokenizer_arena_size_gguf",
                   _tok_arena_size_gguf(self._bytes, len(_gguf), byref(n)))
            self._arena = ctypes.create_string_buffer(n.value)
            _check("egpt_tokenizer_create_gguf",
                   _tok_create_gguf(self._bytes, len(_gguf), self._arena, n.value, byref(h)))
        self._h = h

    @classmethod
    def from_gguf(cls, data):
        return cls(_gguf=data)

    @property
    def handle(self):
        return self._h

    def info(self):
        i = TokenizerInfo()
        i.struct_size = ctypes.sizeof(TokenizerInfo)
        _check("egpt_tokenizer_get_info", _tok_info(self._h, byref(i)))
        return i

    def tokenize(self, text, parse_special=False):
        """Token ids of `text` (str: UTF-8; or bytes, any bytes)."""
        b = text.encode() if isinstance(text, str) else bytes(text)
        n = c_size_t()
        # Size query first (NULL, 0), then the ids.
        s = _tokenize(self._h, b, len(b), int(parse_special), None, 0, byref(n))
        if s == EGPT_OK:
            return []
        if s != ERR_BUFFER_TOO_SMALL:
            _check("egpt_tokenize", s)
        out = (c_uint32 * n.value)()
        _check("egpt_tokenize",
               _tokenize(self._h, b, len(b), int(parse_special), out, n.value, byref(n)))
        return list(out[: n.value])

    def detokenize(self, ids, skip_special=False):
        """The bytes of `ids`."""
        arr = (c_uint32 * len(ids))(*ids)
        n = c_size_t()
        s = _detokenize(self._h, arr, len(ids), int(skip_special), None, 0, byref(n))
        if s == EGPT_OK:
            return b""
        if s != ERR_BUFFER_TOO_SMALL:
            _check("egpt_detokenize", s)
        buf = ctypes.create_string_buffer(n.value)
        _check("egpt_detokenize",
               _detokenize(self._h, arr, len(ids), int(skip_special), buf, n.value, byref(n)))
        return buf.raw[: n.value]

    def piece(self, token):
        buf = ctypes.create_string_buffer(max(1, self.info().max_token_len))
        n = c_size_t()
        _check("egpt_token_to_piece", _token_to_piece(self._h, token, buf, len(buf), byref(n)))
        return buf.raw[: n.value]


class Sampler:
    """A sampler for `model`'s vocabulary; keyword arguments set SamplerParams fields
    (greedy=True starts from the greedy parameters instead of the defaults)."""

    def __init__(self, model, greedy=False, **fields):
        p = _sampler_greedy() if greedy else _sampler_default()
        for k, v in fields.items():
            if not hasattr(p, k) or k == "struct_size":
                raise TypeError(f"unknown sampler parameter {k}")
            setattr(p, k, v)
        n = c_size_t()
        _check("egpt_sampler_arena_size", _sampler_arena_size(model.handle, byref(p), byref(n)))
        self.model = model
        self._arena = ctypes.create_string_buffer(n.value)
        h = c_void_p()
        _check("egpt_sampler_create",
               _sampler_create(model.handle, byref(p), self._arena, n.value, byref(h)))
        self._h = h

    @property
    def handle(self):
        return self._h

    def sample(self, logits):
        arr = (c_float * len(logits))(*logits)
        t = c_uint32()
        _check("egpt_sampler_sample", _sampler_sample(self._h, arr, len(logits), byref(t)))
        return t.value

    def accept(self, token):
        _check("egpt_sampler_accept", _sampler_accept(self._h, token))

    def reset(self):
        _check("egpt_sampler_reset", _sampler_reset(self._h))


def generate(ctx, tok, sampler, prompt, max_tokens=0, stop=(), stop_at_eos=True, on_token=None):
    """Run egpt_generate. `on_token(id, text_bytes)` gets each token's UTF-8-complete
    bytes (id NO_TOKEN for the held bytes released at the end); returning True stops.
    Returns (result dict, all emitted bytes). A Python exception in on_token stops
    generation and is re-raised here."""
    p = _generate_default()
    p.max_tokens = max_tokens
    stops = [s.encode() if isinstance(s, str) else bytes(s) for s in stop]
    strs = (c_char_p * max(1, len(stops)))(*stops)
    lens = (c_size_t * max(1, len(stops)))(*[len(s) for s in stops])
    if stops:
        p.stop_strings = strs
        p.stop_lens = lens
    p.n_stop = len(stops)
    p.stop_at_eos = 1 if stop_at_eos else 0
    r = GenerateResult()
    r.struct_size = ctypes.sizeof(GenerateResult)
    text = bytearray()
    errors = []

    def cb(_user, token, data, n):
        try:
            b = ctypes.string_at(data, n) if n else b""
            text.extend(b)
            if on_token is not None and on_token(token, b):
                return 1
            return 0
        except BaseException as e:  # never let an exception cross the C frames
            errors.append(e)
            return 1

    c_cb = _token_cb(cb)
    arr = (c_uint32 * max(1, len(prompt)))(*prompt)
    s = _generate(ctx._h, tok.handle, sampler.handle, arr, len(prompt), byref(p), c_cb, None,
                  byref(r))
    if errors:
        raise errors[0]
    _check("egpt_generate", s)
    result = {
        "stop_reason": STOP_REASONS.get(r.stop_reason, r.stop_reason),
        "stop_index": r.stop_index if r.stop_index >= 0 else None,
        "n_sampled": r.n_sampled,
        "n_emitted": r.n_emitted,
        "unevaluated": None if r.unevaluated == NO_TOKEN else r.unevaluated,
    }
    return result, bytes(text)
