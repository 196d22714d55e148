module github.com/medgr2/medgr2

go 1.26.8

require google.golang.org/protobuf v1.36.12
