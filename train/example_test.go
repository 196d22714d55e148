package train_test

import (
	"fmt"

	"github.com/medgr2/medgr2/train"
)

// The learning rate warms up linearly, then decays along a cosine.
func ExampleSchedule() {
	s := train.Schedule{LR: 1e-3, Warmup: 10, Decay: "cosine", Steps: 110}
	fmt.Printf("%.1e %.1e %.1e %.1e\n", s.At(1), s.At(10), s.At(60), s.At(110))
	// Output: 1.0e-04 1.0e-03 5.0e-04 0.0e+00
}
