package runtime

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"

	"github.com/medgr2/medgr2/graph/onnxpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// IOInfo describes one input or output of a model, or what a caller expects
// of one (see Session.Check).
type IOInfo struct {
	Name  string
	DType DType
	// Shape holds one entry per dimension: the fixed size, or -1 for a
	// symbolic or unknown dimension (and, in expectations, "any size"). A
	// nil Shape means the rank is unknown (or, in expectations, "any shape");
	// an empty non-nil Shape is a scalar.
	Shape []int64
	// DimNames holds the symbolic name of each dimension ("batch",
	// "sequence"), "" for fixed ones; nil when the model names none.
	DimNames []string
}

// String formats the info as `name: float32[-1 3]`.
func (i IOInfo) String() string {
	if i.Shape == nil {
		return fmt.Sprintf("%s: %s[?]", i.Name, i.DType)
	}
	return fmt.Sprintf("%s: %s%v", i.Name, i.DType, i.Shape)
}

// errTruncated marks protobuf framing that runs past the end of the data.
var errTruncated = errors.New("truncated or malformed protobuf")

// Protobuf field numbers from onnx.proto.
const (
	modelGraphField       = 7
	graphInitializerField = 5
	graphInputField       = 11
	graphOutputField      = 12
	graphSparseInitField  = 15
	tensorNameField       = 8
	sparseValuesField     = 1
)

// mapFile maps path read-only. The returned function unmaps it. Mapping
// instead of reading keeps a multi-gigabyte model with inline weights out of
// the Go heap: the scan below only touches the pages holding I/O metadata.
func mapFile(path string) ([]byte, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, &ModelError{Path: path, Kind: ErrModelNotFound, Err: err}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, &ModelError{Path: path, Kind: ErrModelNotFound, Err: err}
	}
	if !st.Mode().IsRegular() {
		return nil, nil, &ModelError{Path: path, Kind: ErrModelNotFound, Err: errors.New("not a regular file")}
	}
	if st.Size() == 0 {
		return nil, nil, &ModelError{Path: path, Kind: ErrInvalidModel, Err: errors.New("empty file")}
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, &ModelError{Path: path, Kind: ErrModelNotFound, Err: fmt.Errorf("mmap: %w", err)}
	}
	return data, func() { _ = syscall.Munmap(data) }, nil
}

// declaredIO reads the graph inputs and outputs of a serialized ModelProto
// without decoding its weights. Inputs that have an initializer (overridable
// defaults) are left out, as ONNX Runtime does.
func declaredIO(model []byte) (inputs, outputs []IOInfo, err error) {
	graph, err := findGraph(model)
	if err != nil {
		return nil, nil, err
	}
	inits := map[string]bool{}
	var ins, outs [][]byte
	err = eachField(graph, func(num protowire.Number, val []byte) error {
		switch num {
		case graphInputField:
			ins = append(ins, val)
		case graphOutputField:
			outs = append(outs, val)
		case graphInitializerField:
			inits[tensorName(val)] = true
		case graphSparseInitField:
			if v := nestedField(val, sparseValuesField); v != nil {
				inits[tensorName(v)] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for _, raw := range ins {
		info, err := valueInfo(raw)
		if err != nil {
			return nil, nil, err
		}
		if !inits[info.Name] {
			inputs = append(inputs, info)
		}
	}
	for _, raw := range outs {
		info, err := valueInfo(raw)
		if err != nil {
			return nil, nil, err
		}
		outputs = append(outputs, info)
	}
	if len(outputs) == 0 {
		return nil, nil, errors.New("graph declares no outputs")
	}
	return inputs, outputs, nil
}

// findGraph returns the bytes of ModelProto.graph.
func findGraph(model []byte) ([]byte, error) {
	var graph []byte
	err := eachField(model, func(num protowire.Number, val []byte) error {
		if num == modelGraphField {
			graph = val
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if graph == nil {
		return nil, errors.New("no graph in model (not an ONNX ModelProto?)")
	}
	return graph, nil
}

// eachField calls fn with every length-delimited field of a message and
// validates the framing of the others.
func eachField(msg []byte, fn func(protowire.Number, []byte) error) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return fmt.Errorf("%w: %v", errTruncated, protowire.ParseError(n))
		}
		msg = msg[n:]
		if typ == protowire.BytesType {
			val, m := protowire.ConsumeBytes(msg)
			if m < 0 {
				return fmt.Errorf("%w: field %d: %v", errTruncated, num, protowire.ParseError(m))
			}
			if err := fn(num, val); err != nil {
				return err
			}
			msg = msg[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, msg)
		if m < 0 {
			return fmt.Errorf("%w: field %d: %v", errTruncated, num, protowire.ParseError(m))
		}
		msg = msg[m:]
	}
	return nil
}

// nestedField returns the last length-delimited field num of msg, or nil.
func nestedField(msg []byte, num protowire.Number) []byte {
	var out []byte
	_ = eachField(msg, func(n protowire.Number, v []byte) error {
		if n == num {
			out = v
		}
		return nil
	})
	return out
}

func tensorName(tensor []byte) string { return string(nestedField(tensor, tensorNameField)) }

// valueInfo decodes one ValueInfoProto into an IOInfo.
func valueInfo(raw []byte) (IOInfo, error) {
	var vi onnxpb.ValueInfoProto
	if err := proto.Unmarshal(raw, &vi); err != nil {
		return IOInfo{}, fmt.Errorf("value info: %w", err)
	}
	info := IOInfo{Name: vi.GetName()}
	tt := vi.GetType().GetTensorType()
	if tt == nil {
		return info, nil // not a tensor (sequence, map…): dtype stays Undefined
	}
	info.DType = DType(tt.GetElemType())
	if tt.Shape == nil {
		return info, nil
	}
	info.Shape = make([]int64, 0, len(tt.Shape.Dim))
	named := false
	names := make([]string, 0, len(tt.Shape.Dim))
	for _, d := range tt.Shape.Dim {
		if _, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); ok {
			info.Shape = append(info.Shape, d.GetDimValue())
			names = append(names, "")
			continue
		}
		info.Shape = append(info.Shape, -1)
		names = append(names, d.GetDimParam())
		named = named || d.GetDimParam() != ""
	}
	if named {
		info.DimNames = names
	}
	return info, nil
}

// cloneIO deep-copies a list of IOInfo.
func cloneIO(in []IOInfo) []IOInfo {
	out := make([]IOInfo, len(in))
	for i, v := range in {
		out[i] = IOInfo{Name: v.Name, DType: v.DType, Shape: slices.Clone(v.Shape), DimNames: slices.Clone(v.DimNames)}
	}
	return out
}
