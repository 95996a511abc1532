"""ONNX export and reading weights back from an exported graph's initializers."""
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
    onnx.checker.check_model(model)
    return model


def load_weights(module, path):
    """Load a module's parameters/buffers from the initializers of an ONNX graph exported by `export`
    (do_constant_folding=False keeps the state_dict names)."""
    model = onnx.load(path)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
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
