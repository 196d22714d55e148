package models

// Row returns the features of prompt i, its images' merged tokens one
// after another: [image tokens, Hidden()] row-major. The slice is f's own
// memory; copy it before changing it. It panics if i is out of range, as
// slicing does.
func (f Features) Row(i int) []float32 { return f.rows[i] }

// Hidden returns the feature width (the decoder's hidden size).
func (f Features) Hidden() int { return f.hidden }
