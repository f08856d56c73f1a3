"""Random W1A1 networks through the whole build: every one must either build
with 0 mismatches (full integer outputs on every link and the last layer,
random stalls on every stream) or be refused with one named error; a
traceback, an internal error or a mismatch is a bug.

    python benchmarks/fuzz_networks.py --count 50 --seed 0     # the README run
    python benchmarks/fuzz_networks.py --replay 17             # network 17 alone, verbose

Each network (seed = --seed + index) draws: an input of 1-3 channels, 5-14 x
5-14 pixels (mostly non-square), 2-8 input bits; 1-6 convolutions with kernel
1-5, padding 0-2, stride 1-2, 1-17 output channels (odd and prime counts
included), each with BatchNorm (random statistics and affine, negative scales
included) or without it and with a random float bias, and optionally a
max-pool (kernel 2-3, stride 1-3, padding 0 or kernel // 2) after it; in a quarter of
the networks a global average pool after the last convolution; 0-2 hidden FC layers; a first layer of 1-8-bit weights; then the
binary classifier. It is exported through Brevitas to QONNX, built with
`--onnx` at a random valid folding (a random divisor for every PE and SIMD;
three times in ten a convolution's SIMD above its input channels, which puts
FINN's parallel sliding window in front; written as a FINN folding JSON), and verified on 3 random frames.

A convolution with neither BN nor bias is not drawn: its accumulator is exactly 0
on some pixels, where the float reference (QONNX or PyTorch) computes +-1e-8 of
rounding noise and its sign is noise too, while the hardware's integer 0 gives
+1 as the model's arithmetic says; the build reports such frames as mismatches
(README, "Not there yet").

The table at the end lists what was refused and why (the first words of each
error). Networks whose drawn shape does not fit (a kernel larger than its
feature map) are redrawn, never counted.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PRIMES_AND_ODD = [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 16, 17]


@dataclass
class ConvSpec:
    out: int
    kernel: int
    padding: int
    stride: int
    bn: bool
    pool: tuple[int, int, int] | None  # (kernel, stride, padding) of a max-pool after it


@dataclass
class NetSpec:
    seed: int
    in_channels: int
    height: int
    width: int
    in_bits: int
    first_bits: int
    convs: list[ConvSpec] = field(default_factory=list)
    fcs: list[int] = field(default_factory=list)
    classes: int = 10
    gap: bool = False  # a global average pool after the convolutions (a ResNet-style head)

    def text(self) -> str:
        parts = [f"{self.in_channels}x{self.height}x{self.width} u{self.in_bits} w{self.first_bits}"]
        for c in self.convs:
            s = f"c{c.out}k{c.kernel}p{c.padding}s{c.stride}{'' if c.bn else '-nobn'}"
            parts.append(s + (f"+pool{c.pool[0]}/{c.pool[1]}" + (f"p{c.pool[2]}" if c.pool[2] else "")
                              if c.pool else ""))
        parts += ["gap"] * self.gap + [f"fc{h}" for h in self.fcs] + [f"fc{self.classes}"]
        return " ".join(parts)


def _out(size: int, k: int, p: int, s: int) -> int:
    return (size + 2 * p - k) // s + 1


def draw(seed: int) -> NetSpec:
    """A random network that fits its input (redrawn until it does)."""
    rng = random.Random(seed)
    while True:
        spec = NetSpec(seed=seed, in_channels=rng.randint(1, 3), height=rng.randint(5, 14),
                       width=rng.randint(5, 14), in_bits=rng.randint(2, 8),
                       first_bits=rng.choice([1, 1, 2, 4, 8]))
        h, w, ok = spec.height, spec.width, True
        for _ in range(rng.randint(1, 6)):
            k = rng.randint(1, 5)
            p = rng.randint(0, min(2, k - 1))
            s = rng.choice([1, 1, 2])
            if _out(h, k, p, s) < 1 or _out(w, k, p, s) < 1:
                ok = False
                break
            h, w = _out(h, k, p, s), _out(w, k, p, s)
            pool = None
            if rng.random() < 0.35 and min(h, w) >= 2:
                pk = rng.randint(2, min(3, h, w))
                pool = (pk, rng.choice([pk, pk, 1, 2, 3]), rng.choice([0, 0, pk // 2]))
                h, w = _out(h, pk, pool[2], pool[1]), _out(w, pk, pool[2], pool[1])
            spec.convs.append(ConvSpec(rng.choice(PRIMES_AND_ODD), k, p, s, rng.random() < 0.8, pool))
        if not ok or h < 1 or w < 1:
            seed_shift = rng.randint(0, 1 << 30)
            rng = random.Random(seed * 7919 + seed_shift)
            continue
        spec.fcs = [rng.choice([5, 8, 13, 16, 24, 32]) for _ in range(rng.randint(0, 2))]
        spec.classes = rng.choice([2, 3, 7, 10])
        # a global average pool head, drawn apart so the rest of a seed's network stays as it was
        spec.gap = random.Random(seed * 31 + 7).random() < 0.25
        return spec


def torch_model(spec: NetSpec):
    """The Brevitas model of a spec, with random BN statistics and affine."""
    import torch
    from torch import nn
    from quant_models.layers import BinaryAct, WSDQuantConv2d, WSDQuantLinear
    from quant_models.models import SDBNN, ModelConfig

    torch.manual_seed(spec.seed)
    cfg = ModelConfig(wsd=True, asd="none", num_classes=spec.classes, in_channels=spec.in_channels,
                      in_bits=spec.in_bits, first_bits=spec.first_bits, last_bits=1,
                      image_size=spec.height)
    layers, ch, first = [], spec.in_channels, True
    for c in spec.convs:
        layers.append(WSDQuantConv2d(ch, c.out, c.kernel, stride=c.stride, padding=c.padding,
                                     wsd=False, weight_bits=spec.first_bits if first else 1,
                                     bias=not c.bn))
        if c.bn:
            layers.append(nn.BatchNorm2d(c.out))
        layers.append(BinaryAct())
        if c.pool:
            layers.append(nn.MaxPool2d(c.pool[0], stride=c.pool[1], padding=c.pool[2]))
        ch, first = c.out, False
    if spec.gap:
        layers.append(nn.AdaptiveAvgPool2d(1))
    classifier, width = [], None
    model = SDBNN("fuzz", cfg, nn.Sequential(*layers), nn.Sequential())
    model.input_shape = (spec.in_channels, spec.height, spec.width)
    with torch.no_grad():
        model.eval()
        width = model.features(model.input_quant(torch.zeros(1, *model.input_shape))).numel()
    for h in spec.fcs:
        classifier += [WSDQuantLinear(width, h, wsd=False, weight_bits=spec.first_bits if first else 1),
                       nn.BatchNorm1d(h), BinaryAct()]
        width, first = h, False
    classifier.append(WSDQuantLinear(width, spec.classes, wsd=False,
                                     weight_bits=spec.first_bits if first else 1))
    model.classifier = nn.Sequential(*classifier)
    gen = torch.Generator().manual_seed(spec.seed)
    with torch.no_grad():
        model.train()
        for _ in range(2):  # running statistics of random images
            model(torch.rand((16, *model.input_shape), generator=gen))
        for m in model.modules():
            if isinstance(m, nn.Conv2d) and m.bias is not None:
                m.bias.copy_(torch.randn(m.out_channels, generator=gen) * 0.3)
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                sign = torch.where(torch.rand(m.num_features, generator=gen) < 0.2, -1.0, 1.0)
                m.weight.copy_(sign * (0.2 + 1.8 * torch.rand(m.num_features, generator=gen)))
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.5)
                m.running_mean.add_(torch.randn(m.num_features, generator=gen) * m.running_var.sqrt() * 0.3)
    return model.eval()


def random_folding(folding: dict, rng: random.Random, model) -> dict:
    """A random valid folding of the build's own folding_config.json: every
    PE / SIMD a random divisor of what it divides (the MVAU's SIMD also of its
    window's channels, or, three times in ten where the window has a parallel
    form, a divisor of MW above the channels: FINN's parallel window)."""
    from qonnx.custom_op.registry import getCustomOp

    from build_flows.ops.base import can_go_parallel

    def divisors(n):
        return [d for d in range(1, n + 1) if n % d == 0]

    out = {k: dict(v) for k, v in folding.items() if k != "Defaults"}
    for node in model.graph.node:
        if node.name not in out:
            continue
        inst, attrs = getCustomOp(node), out[node.name]
        if node.op_type == "MVAU":
            prod = model.find_producer(node.input[0])
            simd_of = (getCustomOp(prod).get_nodeattr("IFMChannels")
                       if prod is not None and prod.op_type.startswith("ConvolutionInputGenerator")
                       else inst.get_nodeattr("MW"))
            attrs["PE"] = rng.choice(divisors(inst.get_nodeattr("MH")))
            attrs["SIMD"] = rng.choice(divisors(simd_of))
            mw = inst.get_nodeattr("MW")
            wide = [d for d in divisors(mw) if d > simd_of]
            if simd_of < mw and wide and can_go_parallel(prod) and rng.random() < 0.3:
                attrs["SIMD"] = rng.choice(wide)  # FINN's parallel window in front
        elif node.op_type.startswith("ConvolutionInputGenerator"):
            del out[node.name]  # the window takes its MVAU's SIMD (a different one is an error)
        else:
            total = next((inst.get_nodeattr(a) for a in ("NumChannels", "Channels", "Labels")
                          if a in inst.get_nodeattr_types()), None)
            for a in ("PE", "SIMD"):
                if a in attrs and total:
                    attrs[a] = rng.choice(divisors(total))
    return out


def category(message: str) -> str:
    """The refusal reason without layer names and numbers, for the table."""
    text = re.sub(r"\b[A-Za-z]+_\d+\b", "<layer>", message.split("\n")[0])
    text = re.sub(r"\d+", "N", text)
    return text[:110]


def run_one(spec: NetSpec, work: Path, verbose: bool = False) -> dict:
    """Build and verify one network; {'outcome': ok|refused|bug, ...}."""
    import contextlib
    import io

    from qonnx.core.modelwrapper import ModelWrapper

    from build_flows.config import BuildConfig
    from build_flows.errors import BuildError, SimulationMismatchError, ToolError
    from build_flows.flow import run_build
    from quant_models.export import export_qonnx

    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(spec.seed + 1)
    t0 = time.time()
    record = {"seed": spec.seed, "net": spec.text()}
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sys.stdout if verbose else sink):
            export_qonnx(torch_model(spec), work / "net.onnx")
            base = dict(board="pynq-z2", onnx=work / "net.onnx", dataset="random", verify_images=3,
                        yosys=False, target_fps=rng.choice([2000, 20000, 200000]))
            first = run_build(BuildConfig(out=work / "probe", **base), to_step="to_hw")
            folding = random_folding(json.loads((work / "probe" / "folding_config.json").read_text()),
                                     rng, ModelWrapper(str(work / "probe" / "model_hw.onnx")))
            del first
            (work / "folding.json").write_text(json.dumps(folding, indent=1))
            base.pop("target_fps")
            state = run_build(BuildConfig(out=work / "build", folding=work / "folding.json", **base))
        sim = state.sim
        if sim["mismatches"] or sim["differences"] or sim.get("violations"):
            record.update(outcome="bug", error=f"mismatch: {sim['differences'][:1]}")
        else:
            record.update(outcome="ok", cycles=sim["cycles_per_frame"],
                          expected=sim["expected_cycles_per_frame"],
                          layers=len(state.graph.layers()))
    except SimulationMismatchError as e:
        record.update(outcome="bug", error=f"mismatch: {e}")
    except BuildError as e:
        record.update(outcome="refused", error=str(e).split("\n")[0], reason=category(str(e)))
    except ToolError as e:
        record.update(outcome="bug", error=f"{getattr(e, 'tool', 'tool')}: {e}")
    except Exception as e:  # noqa: BLE001 - a traceback is what the fuzzer looks for
        record.update(outcome="bug", error=f"{type(e).__name__}: {e}",
                      traceback=traceback.format_exc(limit=12))
    record["seconds"] = round(time.time() - t0, 1)
    return record


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=50, help="networks to draw (default 50)")
    ap.add_argument("--seed", type=int, default=0, help="seed of network 0 (network i: seed + i)")
    ap.add_argument("--replay", type=int, metavar="SEED", help="run the network of this seed alone, verbose")
    ap.add_argument("--out", type=Path, help="work folder (default: a temporary one)")
    ap.add_argument("--json", type=Path, help="write every record to this JSON file")
    args = ap.parse_args(argv)
    if args.count < 1:
        print(f"error: --count {args.count} must be >= 1", file=sys.stderr)
        return 2
    seeds = [args.replay] if args.replay is not None else list(range(args.seed, args.seed + args.count))
    work = args.out or Path(tempfile.mkdtemp(prefix="fuzz-"))
    records = []
    t0 = time.time()
    for i, seed in enumerate(seeds):
        spec = draw(seed)
        rec = run_one(spec, work / f"net{seed}", verbose=args.replay is not None)
        records.append(rec)
        line = f"[{i + 1}/{len(seeds)}] seed {seed:4d} {rec['outcome']:7s} {rec['seconds']:6.1f} s  {rec['net']}"
        if rec["outcome"] != "ok":
            line += f"\n        {rec['error'][:300]}"
        if rec.get("traceback"):
            line += "\n" + rec["traceback"]
        print(line, flush=True)
    counts = Counter(r["outcome"] for r in records)
    print(f"\n{len(records)} networks in {time.time() - t0:.0f} s: {counts['ok']} built with 0 mismatches, "
          f"{counts['refused']} refused by name, {counts['bug']} bugs (mismatches or tracebacks)")
    reasons = Counter(r["reason"] for r in records if r["outcome"] == "refused")
    if reasons:
        print("\n| refused | networks |\n|---|---|")
        for reason, n in reasons.most_common():
            print(f"| {reason} | {n} |")
    bugs = [r for r in records if r["outcome"] == "bug"]
    for r in bugs:
        print(f"bug: seed {r['seed']} ({r['net']}): {r['error'][:200]}\n"
              f"     replay: python benchmarks/fuzz_networks.py --replay {r['seed']}")
    if args.json:
        args.json.write_text(json.dumps(records, indent=1) + "\n")
    return 1 if bugs else 0


if __name__ == "__main__":
    sys.exit(main())
