"""ONNX export and reading weights back from an exported graph's initializers."""
import json

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from .common import InputError

OPSET = 17


def export(module, args, path, input_names, output_names):
    module.eval()
    dyn = {n: {0: "batch"} for n in list(input_names) + list(output_names)}
    torch.onnx.export(module, args, path, input_names=list(input_names), output_names=list(output_names),
                      dynamic_axes=dyn, opset_version=OPSET, do_constant_folding=False)
    model = onnx.load(path)
    # the exporter merges initializers with identical values; record which name holds each merged weight
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    aliases = {}
    for k, v in module.state_dict().items():
        if k not in inits:
            arr = v.detach().cpu().numpy()
            hit = [n for n, a in inits.items() if a.shape == arr.shape and a.dtype == arr.dtype and np.array_equal(a, arr)]
            if not hit:
                raise RuntimeError(f"export: weight {k} not found among graph initializers")
            aliases[k] = hit[0]
    if aliases:
        entry = model.metadata_props.add()
        entry.key, entry.value = "rebeca.weight_aliases", json.dumps(aliases, sort_keys=True)
        onnx.save(model, path)
    onnx.checker.check_model(model)
    return model


def load_weights(module, path):
    """Load a module's parameters/buffers from the initializers of an ONNX graph exported by `export`
    (do_constant_folding=False keeps the state_dict names)."""
    model = onnx.load(path)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    meta = {p.key: p.value for p in model.metadata_props}
    for k, n in json.loads(meta.get("rebeca.weight_aliases", "{}")).items():
        if n in inits:
            inits[k] = inits[n]
    sd = module.state_dict()
    missing = [k for k in sd if k not in inits]
    if missing:
        raise InputError(f"{path}: graph lacks weights {missing[:5]} (not exported by this toolkit?)")
    new = {}
    for k, v in sd.items():
        arr = inits[k]
        if tuple(arr.shape) != tuple(v.shape):
            raise InputError(f"{path}: weight {k} has shape {arr.shape}, expected {tuple(v.shape)}")
        new[k] = torch.from_numpy(np.array(arr))
    module.load_state_dict(new)
    module.eval()
    return module


def io_names(path):
    g = onnx.load(path).graph
    init = {i.name for i in g.initializer}
    return [i.name for i in g.input if i.name not in init], [o.name for o in g.output]
