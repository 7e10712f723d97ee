#!/usr/bin/env python3
"""PEFT's merge_and_unload on CPU, on the base model and adapters lorastore-bench merged.

Usage: peft_merge_bench.py --base DIR --adapter DIR [--adapter DIR ...] --output JSON
                           [--repetitions N] [--budget SECONDS] [--threads N] [--compare DIR]

--base is a Hugging Face Llama folder (config.json + safetensors, BF16, F16 or F32, as written by
lorastore's SyntheticModel) and each --adapter a PEFT LoRA folder (adapter_config.json +
adapter_model.safetensors, as written by SyntheticAdapter).

Each repetition, outside the clock: `LlamaForCausalLM.from_pretrained(base, dtype=<the config's dtype>)`
on CPU, `PeftModel.from_pretrained` for the first adapter and `load_adapter` for the others (PEFT's
defaults, so F32 factors stay F32), then every parameter is cloned: transformers leaves the weights in a
copy-on-write mapping of the safetensors file, and the merge should not be charged for the page copies
its first writes would make. On the clock: `merge_and_unload(adapter_names=<all of them>)`, which
adds each adapter's scaling * B @ A to the base weight in turn, i.e. lorastore's exact sum with weight 1
for every adapter (PEFT rounds to the base type after each adapter, lorastore once). torch runs on
--threads threads (default: the CPUs this process may use); the best of --repetitions (default 3)
wall-clock times is kept, stopping early once the repetitions (loads included) have taken --budget
seconds (default 60; at least one runs), as lorastore-bench's own repetitions do.

With --compare DIR (lorastore's merged folder of the same base and adapters), the first layer's q_proj
and the last layer's down_proj of PEFT's merged model are compared with DIR's: they match when every
element is within n * eps * (|value| + RMS of the tensor), n the number of adapters and eps the type's
machine epsilon (2^-7 BF16, 2^-10 F16, 2^-23 F32), i.e. about one rounding per adapter.

Writes JSON (seconds, all_seconds, load_seconds, base_bytes, dtype, adapters, threads, versions,
method, comparison). On failure prints one line to stderr and exits non-zero.
"""

import argparse
import gc
import json
import os
import sys
import time

DTYPES = {"bfloat16": ("BF16", 2**-7), "float16": ("F16", 2**-10), "float32": ("F32", 2**-23)}


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="Hugging Face Llama folder")
    parser.add_argument("--adapter", required=True, action="append", help="PEFT LoRA folder (repeat for several)")
    parser.add_argument("--output", required=True, help="where to write the JSON results")
    parser.add_argument("--repetitions", type=int, default=3, help="timed merges; the best is kept (default 3)")
    parser.add_argument("--budget", type=float, default=60, help="stop repeating after this many seconds (default 60)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch threads")
    parser.add_argument("--compare", help="lorastore's merged folder to compare two merged tensors with")
    arguments = parser.parse_args()
    if arguments.repetitions < 1 or arguments.threads < 1:
        parser.error("--repetitions and --threads must be at least 1")
    return arguments


def config_dtype(folder):
    """The `dtype` (or older `torch_dtype`) of the folder's config.json."""
    with open(os.path.join(folder, "config.json")) as file:
        config = json.load(file)
    name = config.get("dtype") or config.get("torch_dtype")
    if name not in DTYPES:
        raise ValueError(f"{folder}/config.json: dtype {name!r} is not one of {sorted(DTYPES)}")
    return name, config["num_hidden_layers"]


def load(torch, base, adapters):
    """The base with every adapter loaded (none merged yet) in process memory, and the seconds that took."""
    from peft import PeftModel
    from transformers import LlamaForCausalLM

    dtype_name, _ = config_dtype(base)
    start = time.perf_counter()
    model = LlamaForCausalLM.from_pretrained(base, dtype=getattr(torch, dtype_name))
    names = [f"adapter{index}" for index in range(len(adapters))]
    model = PeftModel.from_pretrained(model, adapters[0], adapter_name=names[0])
    for name, folder in zip(names[1:], adapters[1:]):
        model.load_adapter(folder, adapter_name=name)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.data = parameter.data.clone()
    return model, names, time.perf_counter() - start


def merged_tensor(folder, name):
    """Tensor `name` of a (possibly sharded) safetensors model folder."""
    from safetensors import safe_open

    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as file:
            file_name = json.load(file)["weight_map"][name]
    else:
        file_name = "model.safetensors"
    with safe_open(os.path.join(folder, file_name), framework="pt") as file:
        return file.get_tensor(name)


def compare(torch, merged, folder, layers, adapters, dtype_name):
    """How PEFT's merged weights differ from lorastore's on two tensors."""
    epsilon = DTYPES[dtype_name][1]
    names = ["model.layers.0.self_attn.q_proj.weight", f"model.layers.{layers - 1}.mlp.down_proj.weight"]
    state = merged.state_dict()
    rows, matches = [], True
    for name in names:
        ours = state[name].to(torch.float64)
        theirs = merged_tensor(folder, name).to(torch.float64)
        if ours.shape != theirs.shape:
            raise ValueError(f"{name}: PEFT's shape {tuple(ours.shape)} but lorastore's {tuple(theirs.shape)}")
        difference = (ours - theirs).abs()
        bound = adapters * epsilon * (theirs.abs() + theirs.pow(2).mean().sqrt())
        within = bool((difference <= bound).all())
        matches = matches and within
        rows.append({
            "tensor": name,
            "max_abs_difference": difference.max().item(),
            "equal_fraction": (difference == 0).double().mean().item(),
            "within_tolerance": within,
        })
    return {
        "tolerance": f"|PEFT - lorastore| <= {adapters} * {epsilon:g} * (|lorastore| + RMS of the tensor)",
        "tensors": rows,
        "matches": matches,
    }


def run(arguments):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local folders only; never wait on the network
    import torch
    from importlib.metadata import version

    torch.set_num_threads(arguments.threads)
    dtype_name, layers = config_dtype(arguments.base)
    times, load_times, comparison, base_bytes = [], [], None, 0
    spent = 0.0
    for repetition in range(arguments.repetitions):
        if spent >= arguments.budget:
            break
        model, names, load_seconds = load(torch, arguments.base, arguments.adapter)
        load_times.append(load_seconds)
        gc.collect()
        with torch.no_grad():
            start = time.perf_counter()
            merged = model.merge_and_unload(adapter_names=names)
            times.append(time.perf_counter() - start)
        spent += load_seconds + times[-1]
        if repetition == 0:
            base_bytes = sum(tensor.numel() * tensor.element_size() for tensor in merged.state_dict().values())
            if arguments.compare:
                comparison = compare(torch, merged, arguments.compare, layers, len(names), dtype_name)
        del model, merged
        gc.collect()
    return {
        "status": "ok",
        "seconds": min(times),
        "all_seconds": times,
        "load_seconds": min(load_times),
        "base_bytes": base_bytes,
        "dtype": DTYPES[dtype_name][0],
        "adapters": len(arguments.adapter),
        "threads": torch.get_num_threads(),
        "versions": {name: version(name) for name in ("torch", "transformers", "peft")},
        "method": "LlamaForCausalLM.from_pretrained + PeftModel.from_pretrained/load_adapter + clone of every "
                  "parameter (untimed), then "
                  f"merge_and_unload(adapter_names=<{len(arguments.adapter)} adapters>); best of {len(times)}",
        "comparison": comparison,
    }


def main():
    arguments = parse_arguments()
    try:
        report = run(arguments)
    except Exception as error:  # any failure: one line for the caller's report
        sys.exit(f"peft_merge_bench.py: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
    with open(arguments.output, "w") as file:
        json.dump(report, file, indent=2)
    print(f"PEFT merge_and_unload, {report['adapters']} adapter(s), {report['dtype']}: best {report['seconds']:.3f} s "
          f"of {len(report['all_seconds'])} ({report['threads']} threads; load {report['load_seconds']:.1f} s)",
          file=sys.stderr)


if __name__ == "__main__":
    main()
