package graph

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by the builder wrap one of these, so
// callers test them with errors.Is.
var (
	ErrShape         = errors.New("graph: shape mismatch")
	ErrDType         = errors.New("graph: dtype mismatch")
	ErrInvalidArg    = errors.New("graph: invalid argument")
	ErrDuplicateName = errors.New("graph: duplicate name")
	ErrNilValue      = errors.New("graph: nil value")
	ErrForeignValue  = errors.New("graph: value belongs to another graph")
	ErrUnsupported   = errors.New("graph: unsupported")
	ErrFormat        = errors.New("graph: malformed file")
)

// OpError reports an operation the builder rejected: which op, the node name
// it would have had, and why.
type OpError struct {
	Op   string // ONNX op type, e.g. "MatMul"
	Node string // the node name the builder assigned
	Err  error  // wraps one of the package sentinels
}

// Error formats the error as "graph: MatMul (MatMul_12): …".
func (e *OpError) Error() string {
	return fmt.Sprintf("graph: %s (%s): %v", e.Op, e.Node, e.Err)
}

// Unwrap returns the underlying error.
func (e *OpError) Unwrap() error { return e.Err }
