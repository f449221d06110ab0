"""MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
CVPR 2018, Table 2): a 3x3 stem, seventeen inverted-residual blocks (1x1 expansion, 3x3
depthwise convolution, 1x1 linear projection), a 1x1 head of 1280 channels, pooling and
a classifier. BatchNorm is folded into the convolutions; ReLU6 and the residual adds are
vector ops. The depthwise convolutions are grouped convolutions with one group per channel.
"""
from __future__ import annotations

from dse.workloads.builder import Graph, check_positive
from dse.workloads.ops import Workload
from dse.workloads.registry import register

#: (expansion t, output channels c, repeats n, stride s) of each bottleneck stage, Table 2.
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
          (6, 320, 1, 1))


def _conv(g: Graph, name: str, deps, batch: int, cin: int, cout: int, hw: int, kernel: int,
          stride: int = 1, groups: int = 1) -> tuple[str, int]:
    pad = kernel // 2
    g.conv(name, deps, batch=batch, in_channels=cin, out_channels=cout, height=hw, width=hw,
           kernel_h=kernel, kernel_w=kernel, stride=stride, padding=pad, groups=groups,
           tag="depthwise" if groups > 1 else "conv")
    return name, (hw + 2 * pad - kernel) // stride + 1


@register("mobilenetv2", "MobileNetV2 image classifier (300 M MACs, 3.4 M weights per 224x224 image; "
                         "depthwise convolutions)")
def mobilenetv2(batch: int = 1, image: int = 224, classes: int = 1000, precision: str = "int8") -> Workload:
    """MobileNetV2 (width 1.0) inference on ``batch`` images of ``image`` x ``image``; samples = batch."""
    check_positive(batch=batch, image=image, classes=classes)
    g = Graph(precision)
    x, hw = _conv(g, "conv1", None, batch, 3, 32, image, 3, stride=2)
    x = g.vector("relu6", batch * 32 * hw * hw, x, ops_per_element=2, tag="relu6")
    cin = 32
    block = 0
    for t, c, n, s in STAGES:
        for i in range(n):
            p = f"block{block}."
            stride = s if i == 0 else 1
            hidden = cin * t
            y = x
            if t != 1:
                y, _ = _conv(g, p + "expand", y, batch, cin, hidden, hw, 1)
                y = g.vector(p + "relu6a", batch * hidden * hw * hw, y, ops_per_element=2, tag="relu6")
            y, hw_out = _conv(g, p + "depthwise", y, batch, hidden, hidden, hw, 3, stride=stride, groups=hidden)
            y = g.vector(p + "relu6b", batch * hidden * hw_out * hw_out, y, ops_per_element=2, tag="relu6")
            y, _ = _conv(g, p + "project", y, batch, hidden, c, hw_out, 1)
            if stride == 1 and cin == c:
                y = g.vector(p + "add", batch * c * hw_out * hw_out, (y, x), inputs=2, tag="residual")
            x, hw, cin = y, hw_out, c
            block += 1
    x, _ = _conv(g, "conv_head", x, batch, cin, 1280, hw, 1)
    x = g.vector("relu6_head", batch * 1280 * hw * hw, x, ops_per_element=2, tag="relu6")
    x = g.vector("avgpool", batch * 1280, x, ops_per_element=hw * hw, inputs=hw * hw, tag="pool")
    g.matmul("fc", m=batch, n=classes, k=1280, deps=x, tag="fc")
    return g.workload("mobilenetv2", samples=batch)
