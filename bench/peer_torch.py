"""The reference workload in PyTorch, as its tutorials write it: an `nn.Sequential`, `optim.SGD`,
`F.cross_entropy` on the logits, `zero_grad / backward / step` per batch. `Runner`'s settings:

    mode "eager"     the loop as written
    mode "compile"   the model through `torch.compile` (forward and backward compiled by
                     Inductor; the optimizer step stays eager, as most users leave it)
    threads          `torch.set_num_threads` (1 or 2 on the 2-core CPU: measured, not assumed)
    precision        "bfloat16": forward and loss under `torch.autocast("cpu", dtype=torch.bfloat16)`,
                     float32 weights and optimizer, as PyTorch's mixed-precision recipe

The data stay in memory as two tensors; each step gathers its batch by index. The running loss
sum and correct count stay tensors, read once at the end.
"""

import contextlib
from typing import Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

LEARNING_RATE = 0.01


def versions() -> dict:
    return {"torch": torch.__version__, "torch_default_threads": torch.get_num_threads()}


def mlp(weights: Sequence[Tuple[np.ndarray, np.ndarray]]) -> torch.nn.Sequential:
    """Flatten -> Linear(784, 256), ReLU -> Linear(256, 128), ReLU -> Linear(128, 10), from `weights`
    (Keras's layout: kernel [in, out], so torch's weight [out, in] is its transpose)."""
    layers = [torch.nn.Flatten()]
    for layer, (kernel, bias) in enumerate(weights):
        linear = torch.nn.Linear(*kernel.shape)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.T)))
            linear.bias.copy_(torch.from_numpy(bias))
        layers += [linear] if layer == len(weights) - 1 else [linear, torch.nn.ReLU()]
    return torch.nn.Sequential(*layers)


class Runner:
    """The workload at one batch size in one of the settings above."""

    def __init__(self, setting: dict, batch_size: int, weights: Sequence[Tuple[np.ndarray, np.ndarray]], data: dict):
        torch.set_num_threads(setting["threads"])
        self.batch_size = batch_size
        self.model = mlp(weights)
        self.forward = torch.compile(self.model) if setting["mode"] == "compile" else self.model
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LEARNING_RATE)
        self.autocast = setting.get("precision") == "bfloat16"
        self.images, self.labels = torch.from_numpy(data["train_images"]), torch.from_numpy(data["train_labels"]).long()
        self.test_images, self.test_labels = torch.from_numpy(data["test_images"]), torch.from_numpy(data["test_labels"])

    def precision(self):
        return torch.autocast("cpu", dtype=torch.bfloat16) if self.autocast else contextlib.nullcontext()

    def train(self, order: np.ndarray) -> Tuple[float, float]:
        """Trains on the batches of `order` [steps, B]; returns their mean loss and accuracy."""
        loss_sum, correct = torch.zeros(()), torch.zeros((), dtype=torch.long)
        self.model.train()
        for index in torch.from_numpy(order):
            x, y = self.images[index], self.labels[index]  # [B, 28, 28], [B]
            with self.precision():
                logits = self.forward(x)  # [B, 10]
                loss = F.cross_entropy(logits.float(), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss_sum += loss.detach()
            correct += (logits.detach().argmax(1) == y).sum()
        return float(loss_sum) / len(order), int(correct) / order.size

    def evaluate(self) -> float:
        self.model.eval()
        with torch.no_grad():
            predictions = self.model(self.test_images).argmax(1)
        return float((predictions == self.test_labels.long()).float().mean())
