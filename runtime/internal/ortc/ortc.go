// Package ortc reads facts from an ONNX Runtime shared library that
// github.com/yalue/onnxruntime_go does not expose: the list of execution
// providers compiled into the library and its version string.
//
// It opens the library with dlopen (which only bumps the reference count when
// the library is already loaded), asks the C API through the vendored
// onnxruntime_c_api.h (ORT_API_VERSION 24, MIT licensed, copied from
// onnxruntime_go v1.27.0), and closes it again. It never creates an OrtEnv,
// so it is safe to call before or after the process-wide environment exists.
package ortc

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include "onnxruntime_c_api.h"

typedef const OrtApiBase* (*medgr2_get_api_base_fn)(void);

// medgr2_api returns the OrtApi of the library behind handle, or NULL with
// *err set to a static message.
static const OrtApi* medgr2_api(void* handle, const char** err) {
	medgr2_get_api_base_fn fn = (medgr2_get_api_base_fn)dlsym(handle, "OrtGetApiBase");
	if (fn == NULL) { *err = "symbol OrtGetApiBase not found"; return NULL; }
	const OrtApiBase* base = fn();
	if (base == NULL) { *err = "OrtGetApiBase returned NULL"; return NULL; }
	const OrtApi* api = base->GetApi(ORT_API_VERSION);
	if (api == NULL) { *err = "library does not support ORT_API_VERSION 24 (ONNX Runtime >= 1.24 needed)"; return NULL; }
	return api;
}

static const char* medgr2_version(void* handle) {
	medgr2_get_api_base_fn fn = (medgr2_get_api_base_fn)dlsym(handle, "OrtGetApiBase");
	if (fn == NULL) return NULL;
	const OrtApiBase* base = fn();
	if (base == NULL) return NULL;
	return base->GetVersionString();
}

// medgr2_providers copies the provider names into a malloc'ed array of
// malloc'ed strings; the caller frees them with medgr2_free_strings.
static char** medgr2_providers(const OrtApi* api, int* n, char** err) {
	char** list = NULL;
	int len = 0;
	OrtStatus* st = api->GetAvailableProviders(&list, &len);
	if (st != NULL) {
		*err = strdup(api->GetErrorMessage(st));
		api->ReleaseStatus(st);
		return NULL;
	}
	char** out = (char**)calloc(len > 0 ? len : 1, sizeof(char*));
	for (int i = 0; i < len; i++) out[i] = strdup(list[i]);
	st = api->ReleaseAvailableProviders(list, len);
	if (st != NULL) api->ReleaseStatus(st);
	*n = len;
	return out;
}

static void medgr2_free_strings(char** s, int n) {
	for (int i = 0; i < n; i++) free(s[i]);
	free(s);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// ErrLoad reports that the shared library could not be opened or is not an
// ONNX Runtime library.
var ErrLoad = errors.New("ortc: cannot load ONNX Runtime library")

// Info is what the library says about itself.
type Info struct {
	Version   string   // e.g. "1.30.0"
	Providers []string // e.g. ["CPUExecutionProvider"], in ORT's priority order
}

// Query opens the library at path, reads its version and execution
// providers, and closes it. Errors wrap ErrLoad.
func Query(path string) (Info, error) {
	cPath := C.CString(path)
	defer C.free(unsafe.Pointer(cPath))
	handle := C.dlopen(cPath, C.RTLD_LAZY)
	if handle == nil {
		return Info{}, fmt.Errorf("%w %q: %s", ErrLoad, path, C.GoString(C.dlerror()))
	}
	defer C.dlclose(handle)
	var cerr *C.char
	api := C.medgr2_api(handle, &cerr)
	if api == nil {
		return Info{}, fmt.Errorf("%w %q: %s", ErrLoad, path, C.GoString(cerr))
	}
	info := Info{Version: C.GoString(C.medgr2_version(handle))}
	var n C.int
	var perr *C.char
	list := C.medgr2_providers(api, &n, &perr)
	if list == nil {
		msg := C.GoString(perr)
		C.free(unsafe.Pointer(perr))
		return info, fmt.Errorf("ortc: GetAvailableProviders: %s", msg)
	}
	defer C.medgr2_free_strings(list, n)
	for _, p := range unsafe.Slice(list, int(n)) {
		info.Providers = append(info.Providers, C.GoString(p))
	}
	return info, nil
}
