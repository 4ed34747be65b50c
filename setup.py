from setuptools import find_packages, setup

COMMANDS = {
    "retinanet-train": "keras_retinanet.bin.train:main",
    "retinanet-evaluate": "keras_retinanet.bin.evaluate:main",
    "retinanet-convert-model": "keras_retinanet.bin.convert_model:main",
    "retinanet-debug": "keras_retinanet.bin.debug:main",
    "retinanet-predict": "keras_retinanet.bin.predict:main",
}

setup(
    name="keras-retinanet",
    version="1.1.0",
    description="RetinaNet object detection for Keras 3, compatible with fizyr's keras-retinanet",
    long_description=open("README.md", encoding="utf8").read(),
    long_description_content_type="text/markdown",
    license="Apache 2.0",
    python_requires=">=3.9",
    packages=find_packages(include=["keras_retinanet", "keras_retinanet.*"]),
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.3",
        "numpy",
        "h5py",
        "opencv-python-headless",
        "pycocotools",
        "matplotlib",
    ],
    extras_require={
        "test": ["pytest", "hypothesis", "tf2onnx", "onnx", "onnxruntime"],
        "tensorboard": ["tensorboard"],
        "export": ["tf2onnx", "onnx", "onnxruntime"],
    },
    entry_points={"console_scripts": [f"{name}={target}" for name, target in COMMANDS.items()]},
)
