#pragma once
// Whether the sm_90a kernels (warpgroup MMA fed through TMA tensor maps: the decode attention of
// attention_wgmma.cu, GEMV variants 12-13) run here: this build has sm_90a code, the current
// device has compute capability 9.0 (sm_90a code runs on nothing else), and the driver encodes
// tensor maps. Asked of the device current at the first call.
namespace wedlm::cuda {

bool sm90a_kernels_run();

}  // namespace wedlm::cuda
