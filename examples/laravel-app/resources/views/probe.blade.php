probe={{ $probe ?? 'none' }}
