# La console du conseiller (tether-console).
