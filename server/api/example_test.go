package api_test

import (
	"encoding/json"
	"fmt"

	"github.com/medgr2/medgr2/server/api"
)

func Example() {
	req := api.VQARequest{
		Image:    "data:image/png;base64,iVBORw0KGgo=",
		Question: "Which imaging modality is shown?",
		Options:  []string{"CT", "MRI", "X-ray", "Ultrasound"},
		Mode:     api.ModeFast,
	}
	b, _ := json.Marshal(req)
	fmt.Println(string(b))
	// Output: {"image":"data:image/png;base64,iVBORw0KGgo=","question":"Which imaging modality is shown?","options":["CT","MRI","X-ray","Ultrasound"],"mode":"fast"}
}
