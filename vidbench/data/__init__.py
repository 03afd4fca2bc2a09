"""Dataset builders, registered by name; `prepare` functions live one file per dataset."""

from vidbench.registry import DATASETS

DATASETS.add("mmnist", "vidbench.data.mmnist:prepare", about="Moving MNIST, 2 digits, 64x64x1 (generated offline or authors' zip)", license="MNIST: CC BY-SA 3.0")
DATASETS.add("minerl", "vidbench.data.minerl:prepare", about="MineRL Navigate, 500-frame 64x64x3 (authors' zip or MINERL_DATA_ROOT)", license="CC BY-NC-SA 4.0")
DATASETS.add("kth", "vidbench.data.kth:prepare", about="KTH Action, 64x64x1 (per-action avi zips)", license="non-commercial research use")
DATASETS.add("mazes", "vidbench.data.mazes:prepare", about="GQN Mazes, 300-frame 64x64x3 (authors' zip or DeepMind TFRecords)", license="Apache 2.0 (gqn-datasets)")
