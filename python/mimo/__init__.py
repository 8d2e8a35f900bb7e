"""mimo — the mimo library from Python: plain ctypes over libmimo.so and
numpy; nothing to compile.

    import mimo
    mimo.train('configs/multitask.yaml', out='runs/mt', epochs=5)  # a job
    m = mimo.load('runs/mt')                  # a run directory or checkpoint
    out = m.predict({'a': a, 'b': b})         # {head: (N, units) float32}
    stats = m.evaluate({'a': a, 'b': b, 'reg': reg, 'cls': cls})
    w = m.weights()                           # {'layer/tensor': ndarray}
    m = mimo.fit('net.yaml', {'x': x, 'y': y}, epochs=20)  # in memory

Overrides are config keys: `epochs=5` is --set train.epochs=5 (the train
section's keys need no prefix; `optimizer__lr=0.01` is train.optimizer.lr),
and any key with its dots: **{'data.train': path}. Under
`mpirun -np N python3 script.py`, train() runs on every rank as `mimo
train` does (each its slice of every global batch). Errors raise
mimo.Error with mimo's message.

libmimo.so is found through MIMO_LIB, beside this package in a build or
install tree, or the loader's path.
"""
import atexit
import ctypes
import ctypes.util
import os

import numpy as np

__all__ = ['Error', 'train', 'load', 'fit', 'Model', 'version']


class Error(RuntimeError):
    """A mimo error: the message mimo would print."""


def _find_lib():
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.environ.get('MIMO_LIB')]
    for up in ('../../build', '../..', '../../../lib', '../../..'):  # build, install trees
        candidates.append(os.path.join(here, up, 'libmimo.so'))
    candidates.append(ctypes.util.find_library('mimo'))
    for c in candidates:
        if c and (os.path.exists(c) or not os.path.isabs(c)):
            try:
                return ctypes.CDLL(c, mode=ctypes.RTLD_GLOBAL)
            except OSError:
                continue
    raise ImportError('mimo: libmimo.so not found (set MIMO_LIB to its path)')


def _load_mpi():
    # Open MPI's plug-ins need libmpi's symbols global before libmimo loads it
    name = ctypes.util.find_library('mpi')
    if name:
        try:
            ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)
        except OSError:
            pass


_load_mpi()
_lib = _find_lib()
_c = ctypes.c_void_p


class _Array(ctypes.Structure):
    _fields_ = [('name', ctypes.c_char_p), ('data', ctypes.POINTER(ctypes.c_float)),
                ('rows', ctypes.c_size_t), ('cols', ctypes.c_int)]


class _Dataset(ctypes.Structure):
    _fields_ = [('arrays', ctypes.POINTER(_Array)), ('n_arrays', ctypes.c_int)]


class _Source(ctypes.Structure):
    _fields_ = [('rows', ctypes.c_size_t), ('ctx', _c), ('read', _c), ('prefetch', _c)]


class _HeadStats(ctypes.Structure):
    _fields_ = [(k, ctypes.c_double) for k in
                ('loss', 'acc', 'mse', 'mae', 'weight', 'labelled', 'auc', 'precision',
                 'recall', 'f1', 'top_k', 'r2', 'task_weight')]


class _Stats(ctypes.Structure):
    _fields_ = [('n_heads', ctypes.c_int), ('loss', ctypes.c_double),
                ('count', ctypes.c_longlong), ('head', ctypes.POINTER(_HeadStats)),
                ('metrics', _c)]


class _OutputSpec(ctypes.Structure):  # the leading fields of mimo_output_spec
    _fields_ = [('name', ctypes.c_char_p), ('loss', ctypes.c_int), ('weight', ctypes.c_double),
                ('huber_delta', ctypes.c_double), ('metrics', ctypes.c_uint)]


class _ParamInfo(ctypes.Structure):
    _fields_ = [('layer', ctypes.c_char_p), ('name', ctypes.c_char_p),
                ('offset', ctypes.c_size_t), ('size', ctypes.c_size_t),
                ('rank', ctypes.c_int), ('dim', ctypes.c_int * 4), ('trainable', ctypes.c_int)]


def _sig(name, res, *args):
    f = getattr(_lib, name)
    f.restype, f.argtypes = res, list(args)
    return f


_errmsg = _sig('mimo_errmsg', ctypes.c_char_p)
_version = _sig('mimo_version', ctypes.c_char_p)
_spec_sizeof = _sig('mimo_spec_sizeof', ctypes.c_size_t)
_spec_free = _sig('mimo_spec_free', None, _c)
_config_load = _sig('mimo_config_load', ctypes.c_int, ctypes.c_char_p,
                    ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, _c)
_load = _sig('mimo_load', ctypes.c_int, ctypes.c_char_p, _c, ctypes.POINTER(_c))
_model_create = _sig('mimo_model_create', ctypes.c_int, _c, ctypes.POINTER(_c))
_model_free = _sig('mimo_model_free', None, ctypes.POINTER(_c))
_model_graph = _sig('mimo_model_graph', _c, _c)
_model_params = _sig('mimo_model_params', ctypes.POINTER(ctypes.c_float), _c)
_arrays_source = _sig('mimo_arrays_source', ctypes.c_int, _c, ctypes.POINTER(_Dataset),
                      ctypes.c_int, ctypes.POINTER(_Source))
_predict = _sig('mimo_model_predict', ctypes.c_int, _c, ctypes.POINTER(_Source),
                ctypes.POINTER(ctypes.POINTER(ctypes.c_float)))
_evaluate = _sig('mimo_model_evaluate', ctypes.c_int, _c, ctypes.POINTER(_Source),
                 ctypes.POINTER(_Stats))
_stats_init = _sig('mimo_stats_init', ctypes.c_int, ctypes.POINTER(_Stats), ctypes.c_int)
_stats_bind = _sig('mimo_stats_bind', ctypes.c_int, ctypes.POINTER(_Stats), _c)
_stats_finish = _sig('mimo_stats_finish', None, _c, ctypes.POINTER(_Stats))
_stats_free = _sig('mimo_stats_free', None, ctypes.POINTER(_Stats))
_fit = _sig('mimo_fit', ctypes.c_int, _c, ctypes.POINTER(_Dataset), _c, _c, _c)
_n_heads = _sig('mimo_graph_n_heads', ctypes.c_int, _c)
_head_name = _sig('mimo_graph_head_name', ctypes.c_char_p, _c, ctypes.c_int)
_head_spec = _sig('mimo_graph_head_spec', ctypes.POINTER(_OutputSpec), _c, ctypes.c_int)
_metric_name = _sig('mimo_metric_name', ctypes.c_char_p, ctypes.c_int)
_head_metric = _sig('mimo_head_metric', ctypes.c_double, ctypes.POINTER(_HeadStats), ctypes.c_int)
_head_units = _sig('mimo_graph_head_units', ctypes.c_int, _c, ctypes.c_int)
_n_inputs = _sig('mimo_graph_n_inputs', ctypes.c_int, _c)
_input_name = _sig('mimo_graph_input_name', ctypes.c_char_p, _c, ctypes.c_int)
_input_width = _sig('mimo_graph_input_width', ctypes.c_int, _c, ctypes.c_int)
_n_tensors = _sig('mimo_graph_n_tensors', ctypes.c_int, _c)
_tensor = _sig('mimo_graph_tensor', _ParamInfo, _c, ctypes.c_int)
_train_config = _sig('mimo_train_config', ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p,
                     ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int)
_mpi_end = _sig('mimo_mpi_end', None)
atexit.register(_mpi_end)

_SECTIONS = {'inputs', 'layers', 'outputs', 'train', 'data', 'plugins'}


def version():
    return _version().decode()


def _check(rc):
    if rc:
        raise Error((_errmsg() or b'mimo failed').decode())


def _sets(overrides):
    """--set strings from keyword overrides: epochs=5 -> train.epochs=5."""
    out = []
    for k, v in overrides.items():
        k = k.replace('__', '.')
        if '.' not in k and k not in _SECTIONS:  # a key of train:
            k = 'train.' + k
        if isinstance(v, bool):
            v = 'true' if v else 'false'
        out.append(('%s=%s' % (k, v)).encode())
    arr = (ctypes.c_char_p * max(len(out), 1))(*out)
    return arr, len(out)


def train(config, out, data=None, quiet=True, **overrides):
    """A training job as `mimo train CONFIG --out OUT --set ...` runs it
    (run directory, checkpoints, history.csv); data: the training file."""
    if data is not None:
        overrides['data.train'] = os.path.abspath(data)
    sets, n = _sets(overrides)
    _check(_train_config(config.encode(), out.encode(), sets, n, 1 if quiet else 0))
    return out


class Model:
    """A mimo model: load() or fit() make one."""

    def __init__(self, spec, handle):
        self._spec, self._m = spec, handle
        self._g = _model_graph(handle)

    def __del__(self):
        if getattr(self, '_m', None) is not None and self._m.value:
            _model_free(ctypes.byref(self._m))
            _spec_free(self._spec)
        self._m = None

    @property
    def heads(self):
        return [_head_name(self._g, h).decode() for h in range(_n_heads(self._g))]

    @property
    def inputs(self):
        return [_input_name(self._g, i).decode() for i in range(_n_inputs(self._g))]

    def _source(self, arrays, targets):
        keep, items = [], []
        rows = None
        widths = {n: _input_width(self._g, i) for i, n in enumerate(self.inputs)}
        for name, a in arrays.items():
            a = np.asarray(a)
            a = a.reshape(len(a), -1)
            if np.issubdtype(a.dtype, np.integer) and widths.get(name) == 2 * a.shape[1]:
                # an input of dtype int64: each id's 8 bytes in two float slots
                a = np.ascontiguousarray(a.astype(np.int64)).view(np.float32)
            else:
                a = np.ascontiguousarray(a, dtype=np.float32)
            rows = len(a) if rows is None else rows
            if len(a) != rows:
                raise Error('%s: %d rows, the others %d' % (name, len(a), rows))
            keep.append(a)
            items.append(_Array(name.encode(), a.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                                len(a), a.shape[1]))
        arr = (_Array * len(items))(*items)
        ds = _Dataset(arr, len(items))
        src = _Source()
        _check(_arrays_source(self._m, ctypes.byref(ds), targets, ctypes.byref(src)))
        return src, rows, (keep, arr, ds)

    def predict(self, arrays):
        """{head: (N, units) float32} for {input: (N, ...)} — what `mimo
        predict` writes."""
        src, rows, keep = self._source(arrays, 0)
        outs = {h: np.zeros((rows, _head_units(self._g, i)), np.float32)
                for i, h in enumerate(self.heads)}
        ptrs = (ctypes.POINTER(ctypes.c_float) * len(outs))(
            *[o.ctypes.data_as(ctypes.POINTER(ctypes.c_float)) for o in outs.values()])
        _check(_predict(self._m, ctypes.byref(src), ptrs))
        return outs

    def evaluate(self, arrays):
        """{'loss': total, head: {'loss': ..., metric: ...}} over the rows
        (inputs and head targets by name), as `mimo eval` reports."""
        src, rows, keep = self._source(arrays, 1)
        st = _Stats()
        _check(_stats_init(ctypes.byref(st), _n_heads(self._g)))
        try:
            _check(_stats_bind(ctypes.byref(st), self._g))
            _check(_evaluate(self._m, ctypes.byref(src), ctypes.byref(st)))
            _stats_finish(self._m, ctypes.byref(st))
            res = {'loss': st.loss}
            for i, h in enumerate(self.heads):
                hs, bits = st.head[i], _head_spec(self._g, i).contents.metrics
                res[h] = {'loss': hs.loss, 'labelled': hs.labelled}
                for k in range(32):
                    name = _metric_name(k)
                    if name is None:
                        break
                    if bits & (1 << k):
                        res[h][name.decode()] = _head_metric(ctypes.byref(hs), k)
            return res
        finally:
            _stats_free(ctypes.byref(st))

    def weights(self):
        """{'layer/tensor': ndarray} of the parameters (copies)."""
        p = _model_params(self._m)
        out = {}
        for k in range(_n_tensors(self._g)):
            t = _tensor(self._g, k)
            shape = tuple(t.dim[:t.rank])
            v = np.ctypeslib.as_array(p, shape=(t.offset + t.size,))[t.offset:]
            out['%s/%s' % (t.layer.decode(), t.name.decode())] = v.copy().reshape(shape)
        return out


def _spec_buffer():
    return ctypes.create_string_buffer(_spec_sizeof())


def load(path):
    """The model of a checkpoint file or a run directory's newest one."""
    spec, m = _spec_buffer(), _c()
    rc = _load(path.encode(), spec, ctypes.byref(m))
    if rc:
        _spec_free(spec)
        _check(rc)
    return Model(spec, m)


def fit(config, arrays, val=None, **overrides):
    """Trains the config's network on in-memory arrays (inputs and head
    targets by name) for its epochs (Keras' fit), in this process; the
    trained Model."""
    sets, n = _sets(overrides)
    spec, m = _spec_buffer(), _c()
    rc = _config_load(config.encode(), sets, n, spec)
    if not rc:
        rc = _model_create(spec, ctypes.byref(m))
    if rc:
        _spec_free(spec)
        _check(rc)
    model = Model(spec, m)
    tr_src, _, keep = model._source(arrays, 1)  # the arrays stay alive here
    if val is not None:
        raise Error('fit: validation arrays are not supported yet; use the '
                    "config's validation_split")
    ds = keep[2]
    _check(_fit(m, ctypes.byref(ds), None, None, None))
    return model
