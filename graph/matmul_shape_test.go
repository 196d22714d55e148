package graph

import "testing"

func TestMatMulVectorShapes(t *testing.T) {
	cases := []struct {
		a, b, want Shape
	}{
		{Dims(4), Dims(4), Shape{}},
		{Dims(4), Dims(4, 3), Dims(3)},
		{Dims(2, 4), Dims(4), Dims(2)},
		{Dims(5, 2, 4), Dims(4), Dims(5, 2)},
		{Dims(4), Dims(5, 4, 3), Dims(5, 3)},
	}
	for _, c := range cases {
		g := New("mm")
		y := g.MatMul(g.Input("a", Float32, c.a), g.Input("b", Float32, c.b))
		if err := g.Err(); err != nil {
			t.Fatalf("%v x %v: %v", c.a, c.b, err)
		}
		if got := y.Shape(); got.String() != c.want.String() {
			t.Errorf("%v x %v = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}
