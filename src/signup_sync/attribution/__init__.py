"""Attribution: pure rules that share a conversion's credit among its touchpoints."""
