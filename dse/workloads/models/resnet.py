"""ResNet-50 v1.5 (torchvision's ``resnet50``): bottlenecks 3-4-6-3, stride on the 3x3 conv.

BatchNorm is folded into the preceding convolution, as inference compilers do,
so it costs nothing; ReLU, the residual add and the pools are vector ops.
"""
from __future__ import annotations

from dse.workloads.builder import Graph, check_positive
from dse.workloads.ops import Workload
from dse.workloads.registry import register

#: (bottleneck width, blocks, stride of the first block) per stage; output width = 4 x bottleneck.
STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))
EXPANSION = 4


def _conv(g: Graph, name: str, deps, batch: int, cin: int, cout: int, hw: int, kernel: int,
          stride: int = 1) -> tuple[str, int]:
    """Append a square conv with 'same'-style padding; return (name, output size)."""
    pad = kernel // 2
    g.conv(name, deps, batch=batch, in_channels=cin, out_channels=cout, height=hw, width=hw,
           kernel_h=kernel, kernel_w=kernel, stride=stride, padding=pad, tag="conv")
    return name, (hw + 2 * pad - kernel) // stride + 1


def _relu(g: Graph, name: str, deps, elements: int) -> str:
    return g.vector(name, elements, deps, ops_per_element=1, tag="relu")


@register("resnet50", "ResNet-50 v1.5 image classifier (4.1 GMAC, 25.5 M weights per 224x224 image)")
def resnet50(batch: int = 1, image: int = 224, classes: int = 1000,
             precision: str = "int8") -> Workload:
    """ResNet-50 v1.5 inference on ``batch`` RGB images of ``image`` x ``image``; samples = batch."""
    check_positive(batch=batch, image=image, classes=classes)
    g = Graph(precision)
    x, hw = _conv(g, "conv1", None, batch, 3, 64, image, 7, stride=2)
    x = _relu(g, "relu", x, batch * 64 * hw * hw)
    # 3x3/2 max pool, padding 1: each output compares 9 inputs; it reads an input
    # about 4x its output (``inputs`` = 4 reads per output element).
    hw_pool = (hw + 2 - 3) // 2 + 1
    x = g.vector("maxpool", batch * 64 * hw_pool * hw_pool, x, ops_per_element=9, inputs=4,
                 tag="pool")
    hw, cin = hw_pool, 64
    for s, (width, blocks, stride) in enumerate(STAGES, start=1):
        cout = width * EXPANSION
        for b in range(blocks):
            p = f"layer{s}.{b}."
            st = stride if b == 0 else 1
            y, _ = _conv(g, p + "conv1", x, batch, cin, width, hw, 1)
            y = _relu(g, p + "relu1", y, batch * width * hw * hw)
            y, hw_out = _conv(g, p + "conv2", y, batch, width, width, hw, 3, stride=st)
            y = _relu(g, p + "relu2", y, batch * width * hw_out * hw_out)
            y, _ = _conv(g, p + "conv3", y, batch, width, cout, hw_out, 1)
            shortcut = x
            if b == 0:
                shortcut, _ = _conv(g, p + "downsample", x, batch, cin, cout, hw, 1, stride=st)
            n_out = batch * cout * hw_out * hw_out
            y = g.vector(p + "add", n_out, (y, shortcut), inputs=2, tag="residual")
            x = _relu(g, p + "relu3", y, n_out)
            hw, cin = hw_out, cout
    x = g.vector("avgpool", batch * cin, x, ops_per_element=hw * hw, inputs=hw * hw, tag="pool")
    g.matmul("fc", m=batch, n=classes, k=cin, deps=x, tag="fc")
    return g.workload("resnet50", samples=batch)
