// Package onnxpb holds the Go types generated from ONNX's onnx.proto
// (ONNX 1.12, IR version 8), as Debian's libonnx-dev ships it.
//
// Regenerate with `make proto`. Do not edit onnx.pb.go by hand.
package onnxpb
