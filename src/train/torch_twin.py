"""A mimo model as a PyTorch module, written by `mimo export torch`.

Plain torch.nn (PyTorch >= 1.13), numpy and h5py; nothing of mimo is
imported. GRAPH below is the network mimo compiled (nodes in topological
order, Keras layouts, channels last); MimoModel runs it, and
load_mimo(path) builds one with the parameters of a mimo checkpoint
(/params/<layer>/<tensor>). Inputs are a dict {input name: tensor (N,
shape...)}; the output is a dict {head name: (N, units)}, what
`mimo predict` writes (a head with from_logits gives its logits).

Masks (embedding's mask_zero) follow mimo: the mask (N, T), true where
the id is not 0, goes with the tensors of the nodes that pass it on (a
node's mask_src names the node that made it); gru/lstm carry their state
over a masked step (with zero_output_for_mask its output is zero there)
and, going backwards with every step's output, make
their own mask, the input's reversed; bidirectional passes the input's
mask on with every step's output; the global 1-D pools leave masked
steps out (zeros when none is left).

    model = load_mimo('runs/demo/checkpoints/last.h5')
    out = model({'x1': torch.randn(4, 5), 'x2': torch.randn(4, 3)})

Training in PyTorch from here: model.train() turns dropout and
batch_norm's batch statistics on; the parameters are model.params
(named '<layer>/<tensor>'); batch_norm's moving statistics are buffers
updated as mimo does (moving = momentum moving + (1 - momentum) batch,
the batch variance biased).
"""
import json
import math

import torch
import torch.nn.functional as F

SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805


def activation(name, alpha, x):
    if name == 'linear':
        return x
    if name == 'relu':
        return torch.relu(x)
    if name == 'leaky_relu':
        return F.leaky_relu(x, alpha)
    if name == 'elu':
        return torch.where(x > 0, x, alpha * torch.expm1(x))
    if name == 'sigmoid':
        return torch.sigmoid(x)
    if name == 'tanh':
        return torch.tanh(x)
    if name == 'softmax':
        return torch.softmax(x, -1)
    if name == 'softplus':
        return F.softplus(x)
    if name == 'quadratic':
        return x * x
    if name == 'gelu':
        return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
    if name == 'gelu_approximate':
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    if name == 'swish':
        return x * torch.sigmoid(x)
    if name == 'selu':
        return SELU_SCALE * torch.where(x > 0, x, SELU_ALPHA * torch.expm1(x))
    if name == 'mish':
        return x * torch.tanh(F.softplus(x))
    if name == 'hard_sigmoid':
        return torch.clamp(x / 6 + 0.5, 0, 1)
    raise ValueError('activation %r has no PyTorch form here' % name)


def same_pads(size, k, s, dil, padding):
    """Keras' padding along one axis: (before, after)."""
    span = (k - 1) * dil + 1
    if padding == 'valid':
        return 0, 0
    out = -(-size // s)
    if padding == 'causal':
        return span - 1, 0
    total = max((out - 1) * s + span - size, 0)
    return total // 2, total - total // 2


def window(x, n, k, s, dil, padding, fill):
    """x (N, C, H, W) padded as Keras pads an (H, W) window."""
    top, bottom = same_pads(x.shape[2], k[0], s[0], 1, padding)
    left, right = same_pads(x.shape[3], k[1], s[1], dil, padding)
    if top or bottom or left or right:
        x = F.pad(x, (left, right, top, bottom), value=fill)
    return x


def pair(v):
    v = v if isinstance(v, list) else [v]
    return v * 2 if len(v) == 1 else v


_M64 = (1 << 64) - 1


def _rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & _M64


def siphash24(k0, k1, data):
    """SipHash-2-4 (Aumasson & Bernstein) of the bytes data under the key
    (k0, k1): mimo's stable hash (base/hash.c), the import's hashed
    columns and the hashing layer."""
    v = [k0 ^ 0x736f6d6570736575, k1 ^ 0x646f72616e646f6d,
         k0 ^ 0x6c7967656e657261, k1 ^ 0x7465646279746573]

    def rnd():
        v[0] = (v[0] + v[1]) & _M64; v[1] = _rotl(v[1], 13) ^ v[0]; v[0] = _rotl(v[0], 32)
        v[2] = (v[2] + v[3]) & _M64; v[3] = _rotl(v[3], 16) ^ v[2]
        v[0] = (v[0] + v[3]) & _M64; v[3] = _rotl(v[3], 21) ^ v[0]
        v[2] = (v[2] + v[1]) & _M64; v[1] = _rotl(v[1], 17) ^ v[2]; v[2] = _rotl(v[2], 32)
    n = len(data)
    words = [data[i:i + 8] for i in range(0, n - n % 8, 8)]
    words.append(data[n - n % 8:] + bytes(7 - n % 8) + bytes([n & 0xff]))
    for w in words:
        m = int.from_bytes(w, 'little')
        v[3] ^= m
        rnd()
        rnd()
        v[0] ^= m
    v[2] ^= 0xff
    for _ in range(4):
        rnd()
    return v[0] ^ v[1] ^ v[2] ^ v[3]


class MimoModel(torch.nn.Module):
    def __init__(self, graph=None):
        super().__init__()
        self.graph = graph or json.loads(GRAPH)
        self.params = torch.nn.ParameterDict()
        for n in self.graph['nodes']:
            for t in n.get('tensors', []):
                p = torch.nn.Parameter(torch.zeros(t['shape']), requires_grad=t['trainable'])
                if t['state']:
                    self.register_buffer(self._key(n['name'], t['name']), p.data)
                else:
                    self.params[self._key(n['name'], t['name'])] = p

    @staticmethod
    def _key(layer, tensor):
        return layer + '__' + tensor  # ParameterDict keys may not hold '/'

    def tensor(self, node, name):
        layer = node.get('params_of') or node['name']
        key = self._key(layer, name)
        return self.params[key] if key in self.params else getattr(self, key)

    def forward(self, inputs):
        v = {}
        masks = {}  # (N, T) bool, true where a step counts, by the node that made it
        self.masks_in = None  # the masks of each input (a kind reading several)
        by_name = {n['name']: n for n in self.graph['nodes']}
        for n in self.graph['nodes']:
            if n['kind'] == 'input':
                x = inputs[n['name']]
                v[n['name']] = x.long() if n.get('ids') else x.to(torch.get_default_dtype())
                continue
            xs = [v[p] for p in n['from']]
            run = getattr(self, 'k_' + n['kind'], None)
            if run is None:
                raise NotImplementedError("layer %r: the kind %r has no PyTorch form in "
                                          "this module" % (n['name'], n['kind']))
            # the mask the input carries (mask_in), for a kind that reads it
            # (mask_use: it sets mask_used) or makes its own (mask_src is
            # the node itself: it sets mask_out); the others pass it on
            self.mask_in = masks[n['mask_in']] if 'mask_in' in n else None
            self.masks_in = [masks.get(by_name[p].get('mask_src')) for p in n['from']]
            self.mask_out, self.mask_used = None, False
            v[n['name']] = run(n, n['args'], xs)
            if n.get('mask_use') and not self.mask_used:
                raise NotImplementedError("layer %r: the kind %r reads no mask in this "
                                          "module" % (n['name'], n['kind']))
            if n.get('mask_src') == n['name']:
                if self.mask_out is None:
                    raise NotImplementedError("layer %r: the kind %r makes no mask in "
                                              "this module" % (n['name'], n['kind']))
                masks[n['name']] = self.mask_out
        return {h['name']: v[h['node']].reshape(v[h['node']].shape[0], -1)
                for h in self.graph['heads']}

    # ---- the kinds, in inference mode unless self.training ---------------
    def k_dense(self, n, a, xs):
        z = xs[0] @ self.tensor(n, 'kernel')
        if a['use_bias']:
            z = z + self.tensor(n, 'bias')
        return activation(a['activation'], a.get('alpha', 0), z)

    def k_activation(self, n, a, xs):
        return activation(a['activation'], a.get('alpha', 0), xs[0])

    def k_embedding(self, n, a, xs):
        if a['mask_zero']:  # id 0 is padding
            self.mask_out = xs[0] != 0
        return F.embedding(xs[0], self.tensor(n, 'embeddings'))

    def k_hashing(self, n, a, xs):
        # the id's decimal text under (salt, salt), as the import's hashed
        # columns; mask_value's id to bin 0, the others to 1 + h mod (B - 1)
        masked = a['mask_value'] != -2 ** 31  # none given
        bins = a['num_bins'] - 1 if masked else a['num_bins']
        out = [siphash24(a['salt'], a['salt'], str(int(v)).encode()) % bins + masked
               for v in xs[0].reshape(-1).tolist()]
        y = torch.tensor(out, dtype=torch.long).reshape(xs[0].shape)
        return torch.where(xs[0] == a['mask_value'], torch.zeros_like(y), y) if masked else y

    def k_embedding_bag(self, n, a, xs):
        rows = F.embedding(xs[0], self.tensor(n, 'embeddings'))  # (N, .., L, d)
        c = (xs[0] != 0).to(rows.dtype) if a['mask_zero'] else torch.ones_like(rows[..., 0])
        if len(xs) > 1:
            c = c * xs[1]
        if a['combiner'] == 'max':
            m = torch.where(c.unsqueeze(-1) > 0, rows, torch.full_like(rows, -math.inf)).amax(-2)
            return torch.where((c.sum(-1) == 0).unsqueeze(-1), torch.zeros_like(m), m)
        s = (rows * c.unsqueeze(-1)).sum(-2)
        if a['combiner'] == 'sum':
            return s
        den = c.sum(-1, keepdim=True)
        return torch.where(den == 0, torch.zeros_like(s), s / torch.where(den == 0, 1, den))

    def k_stack(self, n, a, xs):
        return torch.stack(xs, 1)

    def k_softmax(self, n, a, xs):
        return torch.softmax(xs[0], a['axis'])

    def k_weighted_sum(self, n, a, xs):
        e, g = xs
        return (e * g.reshape(list(g.shape) + [1] * (e.dim() - 2))).sum(1)

    def k_dot(self, n, a, xs):
        # Keras' Dot: axes count the batch as 0, a negative one from each
        # input's end; x's free axes then y's; normalize: cosine
        ax = a['axes'] * 2 if len(a['axes']) == 1 else a['axes']
        x, y = xs
        ax = [v % t.dim() for v, t in zip(ax, (x, y))]
        if a['normalize']:  # x / sqrt(max(sum x^2, 1e-12)), as mimo
            x, y = [t * torch.rsqrt(torch.clamp((t * t).sum(v, keepdim=True), min=1e-12))
                    for t, v in zip((x, y), ax)]
        k = x.shape[ax[0]]
        x = x.movedim(ax[0], -1).reshape(x.shape[0], -1, k)
        y = y.movedim(ax[1], 1).reshape(y.shape[0], k, -1)
        return torch.bmm(x, y).reshape([x.shape[0]] + n['shape'])

    def k_dropout(self, n, a, xs):
        return F.dropout(xs[0], a['rate'], self.training)

    def k_flatten(self, n, a, xs):
        return xs[0].reshape(xs[0].shape[0], -1)

    def k_reshape(self, n, a, xs):
        return xs[0].reshape([xs[0].shape[0]] + n['shape'])

    def k_concat(self, n, a, xs):
        return torch.cat(xs, -1)

    def k_add(self, n, a, xs):
        return sum(xs[1:], xs[0])

    def k_subtract(self, n, a, xs):
        y = xs[0]
        for x in xs[1:]:
            y = y - x
        return y

    def k_multiply(self, n, a, xs):
        y = xs[0]
        for x in xs[1:]:
            y = y * x
        return y

    def k_average(self, n, a, xs):
        return sum(xs[1:], xs[0]) * (1.0 / len(xs))

    def k_masked_softmax(self, n, a, xs):
        x, m = xs[0].reshape(xs[0].shape[0], -1), xs[1].reshape(xs[1].shape[0], -1)
        on = m > 0.5
        p = torch.softmax(torch.where(on, x, torch.full_like(x, -1e30)), -1) * on
        return p.reshape(xs[0].shape)

    def k_layer_norm(self, n, a, xs):
        d = xs[0].shape[-1]
        g = self.tensor(n, 'gamma') if a['scale'] else None
        b = self.tensor(n, 'beta') if a['center'] else None
        return F.layer_norm(xs[0], (d,), g, b, a['epsilon'])

    def k_normalization(self, n, a, xs):
        return (xs[0] - self.tensor(n, 'mean')) / torch.sqrt(self.tensor(n, 'variance') +
                                                           a['epsilon'])

    def k_discretization(self, n, a, xs):
        # the count of boundaries <= x, the boundaries rounded to float32 as mimo's;
        # num_bins: the adapted state tensor the checkpoint carries
        if a.get('num_bins'):
            b = self.tensor(n, 'bin_boundaries').to(xs[0].dtype)
        else:
            b = torch.tensor(a['bin_boundaries'], dtype=torch.float32).to(xs[0].dtype)
        ids = (xs[0].unsqueeze(-1) >= b).sum(-1)
        if a['output_mode'] == 'int':
            return ids.to(xs[0].dtype)
        return F.one_hot(ids, len(b) + 1).to(xs[0].dtype).reshape(
            [xs[0].shape[0]] + n['shape'])

    def k_batch_norm(self, n, a, xs):
        x = xs[0]
        mean, var = self.tensor(n, 'moving_mean'), self.tensor(n, 'moving_variance')
        if self.training and n['trainable']:
            flat = x.reshape(-1, x.shape[-1])
            bm, bv = flat.mean(0), flat.var(0, unbiased=False)
            with torch.no_grad():
                m = a['momentum']
                mean.mul_(m).add_((1 - m) * bm)
                var.mul_(m).add_((1 - m) * bv)
            mean, var = bm, bv
        y = (x - mean) / torch.sqrt(var + a['epsilon'])
        if a['scale']:
            y = y * self.tensor(n, 'gamma')
        if a['center']:
            y = y + self.tensor(n, 'beta')
        return y

    def _conv(self, n, a, x, one_d):
        if one_d:  # (N, T, C) as the image (N, 1, T, C)
            x = x.unsqueeze(1)
        k = self.tensor(n, 'kernel')
        if one_d:
            k = k.unsqueeze(0)
        kh, kw = k.shape[0], k.shape[1]
        s = [1, a['strides'][0]] if one_d else pair(a['strides'])
        dil = a.get('dilation_rate', [1])[0] if one_d else 1
        x = window(x.permute(0, 3, 1, 2), n, (kh, kw), s, dil, a['padding'], 0.0)
        z = F.conv2d(x, k.permute(3, 2, 0, 1), self.tensor(n, 'bias') if a['use_bias'] else None,
                     stride=s, dilation=(1, dil)).permute(0, 2, 3, 1)
        z = z.squeeze(1) if one_d else z
        return activation(a['activation'], a.get('alpha', 0), z)

    def k_conv2d(self, n, a, xs):
        return self._conv(n, a, xs[0], False)

    def k_conv1d(self, n, a, xs):
        return self._conv(n, a, xs[0], True)

    def _pool(self, n, a, x, one_d, kind):
        if one_d:
            x = x.unsqueeze(1)
        x = x.permute(0, 3, 1, 2)
        if kind.startswith('global') and self.mask_in is not None:
            return self._masked_pool(n, x.squeeze(2).permute(0, 2, 1), 'max' in kind)
        if kind.startswith('global'):
            y = x.amax((2, 3)) if 'max' in kind else x.mean((2, 3))
            return y.reshape([x.shape[0]] + n['shape'])
        k = [1, a['pool_size'][0]] if one_d else pair(a['pool_size'])
        st = a.get('strides') or a['pool_size']
        s = [1, st[0]] if one_d else pair(st)
        if kind.startswith('max'):
            y = F.max_pool2d(window(x, n, k, s, 1, a['padding'], -math.inf), k, s)
        else:  # the padding is not counted (Keras)
            ones = window(torch.ones_like(x[:1, :1]), n, k, s, 1, a['padding'], 0.0)
            y = (F.avg_pool2d(window(x, n, k, s, 1, a['padding'], 0.0), k, s) /
                 F.avg_pool2d(ones, k, s))
        return y.permute(0, 2, 3, 1).reshape([x.shape[0]] + n['shape'])

    def _masked_pool(self, n, x, is_max):
        """x (N, T, C) over the steps whose mask is true; zeros for a row
        with none left."""
        m = self.mask_in.unsqueeze(-1)
        self.mask_used = True
        count = m.sum(1).to(x.dtype)  # (N, 1)
        zeros = torch.zeros_like(x)
        if is_max:
            y = torch.where(m, x, torch.full_like(x, -math.inf)).amax(1)
            y = torch.where(count > 0, y, zeros[:, 0])
        else:
            y = torch.where(m, x, zeros).sum(1) / count.clamp(min=1)
        return y.reshape([x.shape[0]] + n['shape'])

    def k_max_pool2d(self, n, a, xs):
        return self._pool(n, a, xs[0], False, 'max')

    def k_avg_pool2d(self, n, a, xs):
        return self._pool(n, a, xs[0], False, 'avg')

    def k_global_avg_pool2d(self, n, a, xs):
        return self._pool(n, a, xs[0], False, 'global_avg')

    def k_global_max_pool2d(self, n, a, xs):
        return self._pool(n, a, xs[0], False, 'global_max')

    def k_max_pool1d(self, n, a, xs):
        return self._pool(n, a, xs[0], True, 'max')

    def k_avg_pool1d(self, n, a, xs):
        return self._pool(n, a, xs[0], True, 'avg')

    def k_global_avg_pool1d(self, n, a, xs):
        return self._pool(n, a, xs[0], True, 'global_avg')

    def k_global_max_pool1d(self, n, a, xs):
        return self._pool(n, a, xs[0], True, 'global_max')

    def _rnn(self, n, a, x, lstm, prefix=''):
        u = a['units']
        W, U = self.tensor(n, prefix + 'kernel'), self.tensor(n, prefix + 'recurrent_kernel')
        b = self.tensor(n, prefix + 'bias') if a['use_bias'] else None
        act = lambda z: activation(a['activation'], 0, z)
        ract = lambda z: activation(a['recurrent_activation'], 0, z)
        steps = range(x.shape[1] - 1, -1, -1) if a['go_backwards'] else range(x.shape[1])
        h = x.new_zeros(x.shape[0], u)
        c = x.new_zeros(x.shape[0], u)
        m = self.mask_in  # a masked step carries h (and c) over
        out = []
        for t in steps:
            h0, c0 = h, c
            if lstm:  # gates i, f, c, o
                g = x[:, t] @ W + h @ U + (b if b is not None else 0)
                i, f, cc, o = ract(g[:, :u]), ract(g[:, u:2 * u]), act(g[:, 2 * u:3 * u]), ract(g[:, 3 * u:])
                c = f * c + i * cc
                h = o * act(c)
            else:  # gates z, r, h; reset after the recurrent product
                gx = x[:, t] @ W + (b[0] if b is not None else 0)
                gh = h @ U + (b[1] if b is not None else 0)
                z = ract(gx[:, :u] + gh[:, :u])
                r = ract(gx[:, u:2 * u] + gh[:, u:2 * u])
                hh = act(gx[:, 2 * u:] + r * gh[:, 2 * u:])
                h = z * h + (1 - z) * hh
            if m is not None:
                h = torch.where(m[:, t:t + 1], h, h0)
                c = torch.where(m[:, t:t + 1], c, c0)
            if m is not None and a.get('zero_output_for_mask'):  # the state carries over
                out.append(torch.where(m[:, t:t + 1], h, torch.zeros_like(h)))
            else:
                out.append(h)
        if m is not None:
            self.mask_used = True
            if a['go_backwards'] and a['return_sequences']:  # the output's, in step order
                self.mask_out = m.flip(1)
        return torch.stack(out, 1) if a['return_sequences'] else out[-1]

    def k_gru(self, n, a, xs):
        return self._rnn(n, a, xs[0], False)

    def k_lstm(self, n, a, xs):
        return self._rnn(n, a, xs[0], True)

    def k_bidirectional(self, n, a, xs):
        """Keras' Bidirectional: the wrapped gru/lstm (a['layer']) as a
        forward copy and a backward one (go_backwards flipped), both with
        zero_output_for_mask = return_sequences; the backward copy's
        sequence reversed to time order, then merged. The input's mask
        passes on with every step's output."""
        fa = dict(a['layer'], zero_output_for_mask=a['layer']['return_sequences'])
        ba = dict(fa, go_backwards=not fa['go_backwards'])
        lstm = a['layer']['type'] == 'lstm'
        f = self._rnn(n, fa, xs[0], lstm, 'forward_')
        b = self._rnn(n, ba, xs[0], lstm, 'backward_')
        self.mask_out = None  # the input's mask passes on unreversed
        if fa['return_sequences']:
            b = b.flip(1)
        mode = a['merge_mode']
        if mode == 'concat':
            return torch.cat([f, b], -1)
        return f + b if mode == 'sum' else (f + b) / 2 if mode == 'ave' else f * b

    def k_position_embedding(self, n, a, xs):
        """keras_hub's PositionEmbedding: the table's first T rows, the
        same for every sample (the input gives the shape)."""
        x = xs[0]
        return self.tensor(n, 'embeddings')[:x.shape[1]].expand(x.shape)

    def k_multi_head_attention(self, n, a, xs):
        """Keras' MultiHeadAttention: [query, value(, key)], kernels (d, H,
        c), output_kernel (H, Dv, d_out); a key masked by the value's or
        the key's mask gets no weight (a query with none left: zeros);
        dropout on the weights in training (PyTorch's draws, not mimo's)."""
        xq, xv = xs[0], xs[1]
        xk = xs[2] if len(xs) > 2 else xv
        proj = {}
        for part, x in (('query', xq), ('key', xk), ('value', xv)):
            p = torch.einsum('btd,dhc->bthc', x, self.tensor(n, part + '_kernel'))
            proj[part] = p + self.tensor(n, part + '_bias') if a['use_bias'] else p
        s = torch.einsum('bihc,bjhc->bhij', proj['query'], proj['key'])
        s = s / math.sqrt(proj['query'].shape[-1])
        tq, tv = s.shape[-2], s.shape[-1]
        seen = torch.ones(1, 1, tq, tv, dtype=torch.bool, device=s.device)
        if a['use_causal_mask']:
            seen = seen.tril()
        for m in self.masks_in[1:]:  # the value's and the key's masks
            if m is not None:
                seen = seen & m[:, None, None, :]
        self.mask_used = True  # the query's mask is not read: it passes on
        s = s.masked_fill(~seen, -math.inf)
        mx = s.amax(-1, keepdim=True)
        e = torch.exp(s - torch.where(torch.isfinite(mx), mx, torch.zeros_like(mx)))
        den = e.sum(-1, keepdim=True)
        w = e / torch.where(den > 0, den, torch.ones_like(den))  # no key left: no weight
        w = F.dropout(w, a['dropout'], self.training)
        c = torch.einsum('bhij,bjhc->bihc', w, proj['value'])
        y = torch.einsum('bihc,hco->bio', c, self.tensor(n, 'output_kernel'))
        return y + self.tensor(n, 'output_bias') if a['use_bias'] else y


def load_mimo(path):
    """A MimoModel with the parameters of the mimo checkpoint (or any HDF5
    file with /params/<layer>/<tensor>) at path, in eval mode."""
    import h5py
    model = MimoModel()
    with h5py.File(path, 'r') as f, torch.no_grad():
        for n in model.graph['nodes']:
            for t in n.get('tensors', []):
                v = torch.as_tensor(f['params'][n['name']][t['name']][()])
                model.tensor(n, t['name']).copy_(v.to(torch.get_default_dtype()))
    return model.eval()
