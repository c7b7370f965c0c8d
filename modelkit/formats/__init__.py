"""File formats modelkit reads without loading a model: GGUF and safetensors headers, PEFT
adapter folders, training checkpoints, llama.cpp's quantization types."""
