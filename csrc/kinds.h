// The codes of the flat descriptions the bindings hand to the kernels (entropyeng/kernels/mlp_spec.py
// writes them): activation kinds and layer kinds, named once. Plain enums, usable in device code.
#pragma once

namespace ee {

// An activation: after an MLP layer (the `acts` list), or a network's act layer.
enum ActCode : int { ACT_IDENTITY = 0, ACT_RELU = 1, ACT_TANH = 2, ACT_SILU = 3 };

// A layer of a network's flat description (see parse_net in net_batch.cpp for each one's fields).
enum LayerCode : int { LAYER_CONV = 1, LAYER_ACT = 2, LAYER_MAXPOOL = 3, LAYER_FLATTEN = 4, LAYER_LINEAR = 5 };

}  // namespace ee
