/* launch_emu.cc - launch.cu compiled by the host C++ compiler over the SIMT emulator (cuda-emu). */
#define AWQ_CUDA_EMU 1
#include "launch.cu"
