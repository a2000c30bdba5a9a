"""cnn: a tiny ResNet on small images. Exercises convolution algorithm choice (oneDNN on the CPU,
cuDNN on CUDA), BatchNorm2d, max and adaptive average pooling, a residual add.

Fixed sizes (model.hidden / embedding_dim / dropout do not apply): stem = Conv2d(C, 16, 3, stride 2)
-> BatchNorm2d -> ReLU -> MaxPool2d(2); one basic residual block of two Conv2d(16, 16, 3) with
BatchNorm2d; AdaptiveAvgPool2d(1) -> Flatten -> Linear(16, classes). Images are uint8 and become
float32 in [0, 1] per batch."""

import collections

from .. import data as checks
from . import common

NAME = "cnn"
SUMMARY = "tiny ResNet: Conv2d, BatchNorm2d, ReLU, MaxPool2d, a residual block, AdaptiveAvgPool2d, Linear"
OUTCOME_METRIC = "val_accuracy"
EVAL_CHUNK = 512
# A multiple of 16, as real models' widths are: Debian's torch 2.6 (oneDNN 3.7.2) on AVX-512 computes
# wrong, sometimes non-finite, convolution gradients for 4, 8 or 24 channels (measured; ISA AVX2 or
# 16/32 channels are right), a defect this canary should not trip over in every run.
WIDTH = 16


def validate_data(torch, tensors, meta):
    images = checks.require(tensors, "images", torch.uint8, 4)
    label = checks.require(tensors, "label", torch.int64, 1)
    per_row = {"images": images, "label": label}
    checks.same_rows(per_row)
    channels = checks.dim_in(images, "images", 1, 1, 4)
    height = checks.dim_in(images, "images", 2, 8, 256)
    width = checks.dim_in(images, "images", 3, 8, 256)
    classes = checks.meta_int(meta, "classes", 2, 1000)
    checks.values_below(label, "label", classes)
    return {"tensors": per_row, "classes": classes,
            "info": {"image_shape": [channels, height, width], "classes": classes}}


def build_model(torch, data, model_cfg):
    nn = torch.nn
    channels = int(data["tensors"]["images"].shape[1])

    class ResidualBlock(nn.Module):
        def __init__(self, width):
            super(ResidualBlock, self).__init__()
            self.conv1 = nn.Conv2d(width, width, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.relu1 = nn.ReLU()
            self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.relu2 = nn.ReLU()  # its own module, so the trace names both activations

        def forward(self, x):
            y = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
            return self.relu2(x + y)

    class TinyResNet(nn.Module):
        def __init__(self):
            super(TinyResNet, self).__init__()
            self.stem = nn.Sequential(collections.OrderedDict([
                ("conv", nn.Conv2d(channels, WIDTH, 3, stride=2, padding=1, bias=False)),
                ("bn", nn.BatchNorm2d(WIDTH)), ("relu", nn.ReLU()), ("pool", nn.MaxPool2d(2))]))
            self.block = ResidualBlock(WIDTH)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.flatten = nn.Flatten()
            self.head = nn.Linear(WIDTH, data["classes"])

        def forward(self, images):
            return self.head(self.flatten(self.pool(self.block(self.stem(images)))))

    return TinyResNet()


def batch(tensors, rows):
    images = tensors["images"][rows].float().div_(255.0)
    return (images,), tensors["label"][rows]


def criterion(torch):
    return torch.nn.CrossEntropyLoss()


val_sums = common.classification_sums
outcome = common.classification_outcome
